// Result<T>: the value of an operation that can fail, or the error that names why.
// Used across the pipeline instead of exceptions (see STYLE.md "Errors").
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace herald {

// What kind of failure this is; the HTTP layer maps it to a status code.
enum class ErrorKind {
  invalid,        // malformed input (400)
  unauthorized,   // 401
  forbidden,      // 403
  not_found,      // 404
  conflict,       // 409
  too_large,      // 413
  unprocessable,  // valid input that breaks a rule (422)
  unavailable,    // cannot persist right now, retry later (503)
  internal,       // a bug or an unexpected failure (500)
};

struct Error {
  ErrorKind kind = ErrorKind::internal;
  std::string code;     // machine-readable, e.g. "invalid_phase"
  std::string message;  // for people, names the problem
  std::string field;    // the offending field, when there is one
};

inline Error make_error(ErrorKind kind, std::string code, std::string message,
                        std::string field = {}) {
  return Error{kind, std::move(code), std::move(message), std::move(field)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace herald

// The shipped default templates, embedded in the binary at build time from templates/*.mustache.
#pragma once

#include <span>
#include <string_view>

namespace herald::render {

struct ShippedTemplate {
  std::string_view name;  // "any.email.subject", the file name without ".mustache"
  std::string_view body;
};

std::span<const ShippedTemplate> shipped_templates();

}  // namespace herald::render

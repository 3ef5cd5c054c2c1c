// Hashes, HMACs, encodings and random bytes (OpenSSL), shared by ids, tokens, signing and audit.
#pragma once

#include <string>
#include <string_view>

namespace herald {

std::string sha256_hex(std::string_view data);
std::string sha256_raw(std::string_view data);  // 32 bytes
std::string hmac_sha256_raw(std::string_view key, std::string_view data);
std::string base64_encode(std::string_view data);
// Returns false on malformed input.
bool base64_decode(std::string_view text, std::string& out);
std::string hex_encode(std::string_view data);
std::string random_bytes(size_t n);  // from the OS CSPRNG; aborts if it is unavailable
// Compares in time independent of where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace herald

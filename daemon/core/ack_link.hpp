// Acknowledgement links: `public_url/ack/MESSAGE_ID?sig=SIGNATURE`, signed with a key Herald
// generates at its first start, so a link proves which message it was sent with and cannot be
// forged for another.
#pragma once

#include <string>
#include <string_view>

namespace herald {

// 32 random bytes, base64: a fresh key for signing links.
std::string new_ack_key();
std::string ack_signature(std::string_view key, std::string_view message_id);
std::string ack_url(std::string_view public_url, std::string_view key, std::string_view message_id);
bool verify_ack_signature(std::string_view key, std::string_view message_id,
                          std::string_view signature);

}  // namespace herald

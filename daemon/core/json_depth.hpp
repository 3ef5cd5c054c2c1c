// How deeply JSON from outside (API bodies, bus messages) may nest, checked on the text before
// it is parsed: the JSON library parses without recursion, but copies, compares and prints
// values recursively, so a body of [[[[...]]]] nested a few hundred thousand levels deep would
// overflow the stack of whatever thread touched it next.
#pragma once

#include <cstddef>
#include <string_view>

namespace herald {

// Far beyond anything an event's details, a plan or a template context needs.
inline constexpr size_t kMaxJsonDepth = 64;

// True when no array or object in TEXT is nested more than MAX_DEPTH levels deep; brackets
// inside strings do not count. TEXT need not be valid JSON: the parser still judges that.
bool json_depth_within(std::string_view text, size_t max_depth = kMaxJsonDepth);

}  // namespace herald

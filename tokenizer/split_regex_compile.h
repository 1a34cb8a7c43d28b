#pragma once
// Compiles a split pattern (see split_regex.h for the dialect) into character sets and a
// backtracking program; refuses unsupported syntax with moeflow::Error naming `context`.
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/split_regex.h"

namespace moeflow::tokenizer_detail {

void compile_split_regex(std::string_view pattern, const std::string& context,
                         std::vector<SplitRegex::CharSet>& sets,
                         std::vector<SplitRegex::Instruction>& program);

}  // namespace moeflow::tokenizer_detail

// One constant for iteration counts, smaller under sanitizers (STYLE.md, Tests).
#pragma once

#include <cstddef>

namespace conveyor::testing {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr std::size_t kScale = 1;
#else
inline constexpr std::size_t kScale = 64;
#endif

}  // namespace conveyor::testing

// libFuzzer target: TextLineReader over arbitrary bytes (tests/fuzz/README.md).
// Invariants: it never throws (any byte sequence is text), every record is the file's bytes at
// its offset, records come in increasing offsets without overlap, and the bytes between them are
// exactly the "\n" (and the "\r" of a CRLF) the reader strips; small buffers make lines span
// refills.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/record_reader.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  conveyor::fuzz::MemFile file(data, size);
  const std::size_t buffer = 1 + (size % 37);  // different refill boundaries per input
  conveyor::TextLineReader reader(file.path(), buffer);
  std::uint64_t expected_offset = 0;
  while (auto rec = reader.next()) {
    if (rec->offset != expected_offset) std::abort();
    if (rec->offset + rec->data.size() > size) std::abort();
    if (bytes.substr(rec->offset, rec->data.size()) != rec->data) std::abort();
    std::size_t end = rec->offset + rec->data.size();
    if (end < size && bytes[end] == '\r') ++end;  // the stripped "\r" of a CRLF
    if (end < size) {
      if (bytes[end] != '\n') std::abort();  // a record ends at a newline or the file's end
      ++end;
    }
    expected_offset = end;
    if (reader.offset() != end) std::abort();
  }
  // Everything after the last record is at most a lone "\r" (TF drops it).
  if (size - expected_offset > 1) std::abort();
  if (size - expected_offset == 1 && bytes.back() != '\r') std::abort();
  return 0;
}

// libFuzzer target: TFRecordReader framing over arbitrary bytes (tests/fuzz/README.md).
// Invariants: the only error is DataLoss; every record returned is framed correctly at its
// offset (tfrecord_frame(data) is exactly the file's bytes there, so both CRCs matched);
// records are contiguous from offset 0; the error is sticky and names the bad record's offset.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/record_reader.h"
#include "engine/status.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  conveyor::fuzz::MemFile file(data, size);
  const std::size_t buffer = 16 + (size % 61);
  conveyor::TFRecordReader reader(file.path(), buffer);
  std::uint64_t expected_offset = 0;
  try {
    while (auto rec = reader.next()) {
      if (rec->offset != expected_offset) std::abort();
      const std::string frame = conveyor::tfrecord_frame(rec->data);
      if (bytes.substr(rec->offset, frame.size()) != frame) std::abort();
      expected_offset += frame.size();
    }
    if (expected_offset != size) std::abort();  // a clean end is the end of the file
  } catch (const conveyor::Error& e) {
    if (e.kind() != conveyor::ErrorKind::kDataLoss) std::abort();
    if (reader.offset() != expected_offset) std::abort();
    const std::string at = " at " + std::to_string(expected_offset) + " ";
    if (e.message().find(at) == std::string::npos) std::abort();
    try {  // sticky
      (void)reader.next();
      std::abort();
    } catch (const conveyor::Error& again) {
      if (again.message() != e.message()) std::abort();
    }
  }
  return 0;
}

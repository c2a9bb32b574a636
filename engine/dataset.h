// A deterministic, self-checking TFRecord dataset for tests, examples and benchmarks of the
// input pipeline.
//
// Contract:
//  - generate_dataset(dir, spec) writes spec.files TFRecord files of spec.records_per_file
//    records each into `dir` (created if missing), named like TF's shards:
//    data-00000-of-00008.tfrecord. The bytes depend on the spec only (same spec, same bytes, on
//    any machine). It is idempotent: `dir`/MANIFEST records the spec and each file's size; when
//    the manifest matches the spec and every file has its recorded size, nothing is written.
//    Otherwise the files the old manifest listed are removed, the files are written, and the
//    manifest is written last (through a rename), so an interrupted run regenerates next time.
//  - Every record is self-describing: make_record() lays out, little endian,
//        offset 0  u32 magic "CVR1"          offset 16 u64 id = file * records_per_file + index
//        offset 4  u32 file                  offset 24 u32 checksum
//        offset 8  u32 index (in its file)   offset 28 payload[length]
//        offset 12 u32 payload length
//    The checksum is the CRC32C of bytes [0, 24) followed by the payload, so a flipped bit
//    anywhere, a truncated record or a header glued to another payload is detected. The id is
//    the same in every epoch and unique in the dataset (0 .. files * records_per_file - 1), so a
//    consumer can prove none lost and none duplicated with one bitmap.
//    Payload lengths are pseudo-random in [min_payload, max_payload]; payload bytes are a
//    SplitMix64 stream seeded by (seed, id).
//  - parse_record() never throws: a malformed record gives ok = false.
//  - The default spec is 8 files x 2048 records, payloads 0..2048 bytes: about 17 MB, written in
//    well under a second.
//  - Errors: InvalidArgument naming a bad spec field; file errors as in engine/record_reader.h;
//    std::filesystem::filesystem_error from creating the directory or renaming the manifest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor {

struct DatasetSpec {
  std::size_t files = 8;
  std::size_t records_per_file = 2048;
  std::uint64_t seed = 1;
  std::size_t min_payload = 0;
  std::size_t max_payload = 2048;
};

struct Dataset {
  std::vector<std::filesystem::path> files;  // in file-index order
  std::uint64_t records = 0;                 // files * records_per_file
  std::uint64_t bytes = 0;                   // total size of the files
  bool generated = false;                    // false when the existing files were reused
};

inline constexpr std::uint32_t kDatasetRecordMagic = 0x31525643;  // "CVR1" little endian
inline constexpr std::size_t kDatasetRecordHeaderSize = 28;

Dataset generate_dataset(const std::filesystem::path& dir, const DatasetSpec& spec = {});
Dataset generate_dataset(const std::filesystem::path& dir, std::size_t files,
                         std::size_t records_per_file, std::uint64_t seed);

// The name of file `file` of a dataset of `files` files ("data-00003-of-00008.tfrecord").
std::string dataset_file_name(std::size_t file, std::size_t files);

// The bytes of record `index` of file `file` (what generate_dataset writes there).
std::string make_record(const DatasetSpec& spec, std::uint32_t file, std::uint32_t index);

struct ParsedRecord {
  std::uint64_t id = 0;
  std::uint32_t file = 0;
  std::uint32_t index = 0;
  std::size_t payload_size = 0;
  bool ok = false;  // magic, length and checksum all right; the other fields are meaningful
};

ParsedRecord parse_record(std::string_view bytes) noexcept;

}  // namespace conveyor

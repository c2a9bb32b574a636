#include "engine/dataset.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <system_error>

#include "engine/crc32c.h"
#include "engine/record_reader.h"
#include "engine/status.h"

namespace conveyor {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxPayload = std::size_t{16} << 20;
constexpr const char* kManifestName = "MANIFEST";

// SplitMix64 (Steele, Lea, Flood 2014): the finaliser and the stream step.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ull;

void store_le32(char* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}
void store_le64(char* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}
std::uint32_t load_le32(const char* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
std::uint64_t load_le64(const char* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void check_spec(const DatasetSpec& spec) {
  constexpr auto kU32 = std::numeric_limits<std::uint32_t>::max();
  if (spec.files < 1 || spec.files > 99999) {
    throw invalid_argument("files", static_cast<long long>(spec.files), "must be in [1, 99999]");
  }
  if (spec.records_per_file < 1 || spec.records_per_file > kU32) {
    throw invalid_argument("records_per_file", static_cast<long long>(spec.records_per_file),
                           "must be in [1, 2^32 - 1]");
  }
  if (spec.max_payload > kMaxPayload) {
    throw invalid_argument("max_payload", static_cast<long long>(spec.max_payload),
                           "must be <= 16 MiB");
  }
  if (spec.min_payload > spec.max_payload) {
    throw invalid_argument("min_payload", static_cast<long long>(spec.min_payload),
                           "must be <= max_payload (" + std::to_string(spec.max_payload) + ")");
  }
}

// The manifest's lines that depend on the spec only; the file lines follow them.
std::string manifest_header(const DatasetSpec& spec) {
  std::ostringstream out;
  out << "conveyor-dataset 1\n"
      << "format tfrecord\n"
      << "files " << spec.files << "\n"
      << "records_per_file " << spec.records_per_file << "\n"
      << "seed " << spec.seed << "\n"
      << "min_payload " << spec.min_payload << "\n"
      << "max_payload " << spec.max_payload << "\n";
  return out.str();
}

struct ManifestEntry {
  std::string name;
  std::uintmax_t size = 0;
};

// The text of `path`, or "" if it cannot be read.
std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return in ? out.str() : std::string();
}

// The "file <name> <size>" lines of a manifest.
std::vector<ManifestEntry> manifest_entries(const std::string& text) {
  std::vector<ManifestEntry> entries;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key;
    ManifestEntry e;
    if (fields >> key >> e.name >> e.size && key == "file") entries.push_back(std::move(e));
  }
  return entries;
}

// Whether `dir` holds the dataset the manifest describes, all files at their recorded sizes.
bool up_to_date(const fs::path& dir, const DatasetSpec& spec, const std::string& manifest) {
  const std::string header = manifest_header(spec);
  if (manifest.compare(0, header.size(), header) != 0) return false;
  const std::vector<ManifestEntry> entries = manifest_entries(manifest);
  if (entries.size() != spec.files) return false;
  for (std::size_t f = 0; f < spec.files; ++f) {
    if (entries[f].name != dataset_file_name(f, spec.files)) return false;
    std::error_code ec;
    const std::uintmax_t size = fs::file_size(dir / entries[f].name, ec);
    if (ec || size != entries[f].size) return false;
  }
  return true;
}

}  // namespace

std::string dataset_file_name(std::size_t file, std::size_t files) {
  char name[64];
  std::snprintf(name, sizeof name, "data-%05zu-of-%05zu.tfrecord", file, files);
  return name;
}

std::string make_record(const DatasetSpec& spec, std::uint32_t file, std::uint32_t index) {
  const std::uint64_t id = std::uint64_t{file} * spec.records_per_file + index;
  std::uint64_t state = mix64(spec.seed ^ mix64(id + kGolden));
  const std::uint64_t span = std::uint64_t{spec.max_payload} - spec.min_payload + 1;
  const std::size_t length = spec.min_payload + static_cast<std::size_t>(mix64(state) % span);

  std::string r(kDatasetRecordHeaderSize + length, '\0');
  char* p = r.data();
  store_le32(p, kDatasetRecordMagic);
  store_le32(p + 4, file);
  store_le32(p + 8, index);
  store_le32(p + 12, static_cast<std::uint32_t>(length));
  store_le64(p + 16, id);
  char* payload = p + kDatasetRecordHeaderSize;
  for (std::size_t i = 0; i < length; i += 8) {
    state += kGolden;
    char word[8];
    store_le64(word, mix64(state));
    std::memcpy(payload + i, word, std::min<std::size_t>(8, length - i));
  }
  const std::uint32_t crc = crc32c::extend(crc32c::value(p, 24), payload, length);
  store_le32(p + 24, crc);
  return r;
}

ParsedRecord parse_record(std::string_view bytes) noexcept {
  ParsedRecord out;
  if (bytes.size() < kDatasetRecordHeaderSize) return out;
  const char* p = bytes.data();
  if (load_le32(p) != kDatasetRecordMagic) return out;
  const std::size_t length = load_le32(p + 12);
  if (bytes.size() - kDatasetRecordHeaderSize != length) return out;
  const std::uint32_t crc =
      crc32c::extend(crc32c::value(p, 24), p + kDatasetRecordHeaderSize, length);
  if (crc != load_le32(p + 24)) return out;
  out.file = load_le32(p + 4);
  out.index = load_le32(p + 8);
  out.id = load_le64(p + 16);
  out.payload_size = length;
  out.ok = true;
  return out;
}

Dataset generate_dataset(const fs::path& dir, std::size_t files, std::size_t records_per_file,
                         std::uint64_t seed) {
  DatasetSpec spec;
  spec.files = files;
  spec.records_per_file = records_per_file;
  spec.seed = seed;
  return generate_dataset(dir, spec);
}

Dataset generate_dataset(const fs::path& dir, const DatasetSpec& spec) {
  check_spec(spec);
  Dataset out;
  out.records = std::uint64_t{spec.files} * spec.records_per_file;
  for (std::size_t f = 0; f < spec.files; ++f) {
    out.files.push_back(dir / dataset_file_name(f, spec.files));
  }

  const fs::path manifest_path = dir / kManifestName;
  const std::string old_manifest = slurp(manifest_path);
  if (up_to_date(dir, spec, old_manifest)) {
    for (const ManifestEntry& e : manifest_entries(old_manifest)) out.bytes += e.size;
    return out;
  }

  fs::create_directories(dir);
  // The manifest goes first, so a run interrupted from here on regenerates; then the files the
  // old manifest listed that this dataset does not overwrite.
  fs::remove(manifest_path);
  std::set<std::string> names;
  for (const fs::path& p : out.files) names.insert(p.filename().string());
  for (const ManifestEntry& e : manifest_entries(old_manifest)) {
    // Only plain names the generator could have written: never a path out of `dir`.
    if (names.count(e.name) == 0 && e.name.find('/') == std::string::npos &&
        e.name.rfind("data-", 0) == 0) {
      std::error_code ignored;
      fs::remove(dir / e.name, ignored);
    }
  }

  std::string manifest = manifest_header(spec);
  for (std::size_t f = 0; f < spec.files; ++f) {
    TFRecordWriter writer(out.files[f].string());
    for (std::size_t i = 0; i < spec.records_per_file; ++i) {
      writer.write(make_record(spec, static_cast<std::uint32_t>(f), static_cast<std::uint32_t>(i)));
    }
    writer.close();
    out.bytes += writer.offset();
    manifest += "file " + out.files[f].filename().string() + " " +
                std::to_string(writer.offset()) + "\n";
  }

  const fs::path tmp = dir / (std::string(kManifestName) + ".tmp");
  {
    internal::FileWriter w(tmp.string());
    w.append(manifest);
    w.close();
  }
  fs::rename(tmp, manifest_path);
  out.generated = true;
  return out;
}

}  // namespace conveyor

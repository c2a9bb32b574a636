#include "engine/record_reader.h"

#include <cstring>
#include <limits>
#include <utility>

#include "engine/crc32c.h"

namespace conveyor {
namespace {

std::uint64_t load_le64(const char* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::uint32_t load_le32(const char* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void store_le64(char* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}

void store_le32(char* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}

// Header of a record of `length` bytes: length, masked CRC of the length bytes.
void encode_header(char* h, std::uint64_t length) noexcept {
  store_le64(h, length);
  store_le32(h + 8, crc32c::mask(crc32c::value(h, 8)));
}

std::size_t checked_buffer_size(std::size_t size, std::size_t minimum) {
  if (size < minimum) {
    throw invalid_argument("buffer_size", static_cast<long long>(size),
                           "must be >= " + std::to_string(minimum));
  }
  return size;
}

}  // namespace

// ---- TextLineReader -----------------------------------------------------------------------------

TextLineReader::TextLineReader(std::string path, std::size_t buffer_size)
    : file_(std::move(path), checked_buffer_size(buffer_size, 1)) {}

std::optional<Record> TextLineReader::next() {
  if (file_.fill(1) == 0) return std::nullopt;
  Record r;
  r.offset = file_.offset();
  for (;;) {
    const std::string_view w = file_.window();
    if (const void* nl = std::memchr(w.data(), '\n', w.size())) {
      const auto n = static_cast<std::size_t>(static_cast<const char*>(nl) - w.data());
      r.data.append(w.data(), n);
      file_.consume(n + 1);
      if (!r.data.empty() && r.data.back() == '\r') r.data.pop_back();
      return r;
    }
    // No newline yet: the line continues past this window.
    r.data.append(w);
    file_.consume(w.size());
    if (file_.fill(1) == 0) break;
  }
  // A last line without "\n". As in TF (InputBuffer::ReadLine), one that is empty once its
  // "\r" is stripped is not a record.
  if (!r.data.empty() && r.data.back() == '\r') r.data.pop_back();
  if (r.data.empty()) return std::nullopt;
  return r;
}

// ---- TFRecordReader -----------------------------------------------------------------------------

TFRecordReader::TFRecordReader(std::string path, std::size_t buffer_size)
    : file_(std::move(path), checked_buffer_size(buffer_size, kHeaderSize + kFooterSize)) {}

void TFRecordReader::fail(std::string_view what) {
  failure_.emplace(ErrorKind::kDataLoss, std::string(what) + " record at " +
                                             std::to_string(offset_) + " in file '" +
                                             file_.path() + "'");
  throw *failure_;
}

std::optional<Record> TFRecordReader::next() {
  if (failure_) throw *failure_;
  const std::size_t have = file_.fill(kHeaderSize);
  if (have == 0) return std::nullopt;  // the clean end of the file
  if (have < kHeaderSize) fail("truncated");

  const char* header = file_.window().data();
  const std::uint64_t length = load_le64(header);
  if (crc32c::unmask(load_le32(header + 8)) != crc32c::value(header, 8)) fail("corrupted");

  // The data and its CRC must be in the file before we allocate for them. What is buffered is
  // in the file; beyond that, compare with the size last seen and refresh it (one fstat) only
  // when the record reaches past it, so reading a file that does not change costs one fstat.
  const std::uint64_t buffered = have - kHeaderSize;
  if (length > std::numeric_limits<std::uint64_t>::max() - kFooterSize) fail("truncated");
  const std::uint64_t needed = length + kFooterSize;
  if (needed > buffered) {
    const std::uint64_t data_at = offset_ + kHeaderSize;
    auto room = [&] { return known_size_ > data_at ? known_size_ - data_at : 0; };
    if (room() < needed) {
      known_size_ = file_.offset() + file_.remaining();
      if (room() < needed) fail("truncated");
    }
  }
  if (length > std::numeric_limits<std::size_t>::max()) fail("truncated");
  file_.consume(kHeaderSize);

  Record r;
  r.offset = offset_;
  r.data.resize(static_cast<std::size_t>(length));
  if (file_.read(r.data.data(), r.data.size()) < r.data.size()) fail("truncated");
  if (file_.fill(kFooterSize) < kFooterSize) fail("truncated");
  if (crc32c::unmask(load_le32(file_.window().data())) != crc32c::value(r.data)) {
    fail("corrupted");
  }
  file_.consume(kFooterSize);
  offset_ = file_.offset();
  return r;
}

// ---- TFRecordWriter -----------------------------------------------------------------------------

TFRecordWriter::TFRecordWriter(std::string path) : file_(std::move(path)) {}

void TFRecordWriter::write(std::string_view data) {
  char header[TFRecordReader::kHeaderSize];
  encode_header(header, data.size());
  char footer[TFRecordReader::kFooterSize];
  store_le32(footer, crc32c::mask(crc32c::value(data)));
  file_.append({header, sizeof header});
  file_.append(data);
  file_.append({footer, sizeof footer});
}

std::string tfrecord_frame(std::string_view data) {
  std::string out(TFRecordReader::kHeaderSize + data.size() + TFRecordReader::kFooterSize, '\0');
  encode_header(out.data(), data.size());
  std::memcpy(out.data() + TFRecordReader::kHeaderSize, data.data(), data.size());
  store_le32(out.data() + TFRecordReader::kHeaderSize + data.size(),
             crc32c::mask(crc32c::value(data)));
  return out;
}

}  // namespace conveyor

// Record readers of the canonical input pipeline: TextLineReader and TFRecordReader (TF's
// tf.TextLineReader / tf.TFRecordReader, one file each), and TFRecordWriter.
//
// Contract:
//  - A reader returns a file's records in order, each with the byte offset at which it starts;
//    next() returns std::nullopt at the clean end of the file (and on every call after it).
//    offset() is the offset of the next record to read. Not thread-safe: one reader per thread
//    (as TF's readers, which run one file per reader). Movable, not copyable; a moved-from
//    reader or writer may only be destroyed or assigned to.
//  - TextLineReader: a record is a line without its "\n" and without one trailing "\r" (so CRLF
//    files read as LF files); a last line without "\n" is a record (unless it is a lone "\r":
//    TF drops that one too); an empty file has none; an empty line is an empty record. Lines
//    may be any length (they span buffer refills).
//  - TFRecordReader reads TensorFlow's TFRecord format exactly (uncompressed), so files written
//    by tf.io.TFRecordWriter read as they are. Each record is
//        uint64 length            little endian
//        uint32 masked_crc32c(the 8 length bytes)
//        byte   data[length]
//        uint32 masked_crc32c(data)
//    with mask() from engine/crc32c.h. Both CRCs are checked.
//  - Errors (conveyor::Error):
//      DataLoss "truncated record at <offset> in file '<path>'": the file ends inside a record
//        (header, data or data CRC), or the length points past the end of the file.
//      DataLoss "corrupted record at <offset> in file '<path>'": a length or data CRC mismatch.
//      <offset> is where the bad record starts, i.e. offset() after the last good record.
//      Every record before it has been returned. The error is sticky: later next() calls throw
//      it again and offset() stays at the bad record (a reader does not guess where the next
//      good record starts; TF does not either).
//      InvalidArgument "path = '<path>': cannot be opened for reading: <strerror>" from the
//        constructor (Conveyor has no NotFound kind; TF would say NotFound).
//      Internal naming the path, offset and strerror if read(2) fails.
//  - TFRecordWriter writes the same format; errors are exceptions (InvalidArgument on open,
//    Internal on a write error, FailedPrecondition on write after close()).
//
// Algorithm: one buffered read(2) of 256 KiB refills the window (engine/internal/
// buffered_file.h); headers, lines and records smaller than the buffer are parsed in place, so
// no record costs a syscall of its own. A record larger than the buffer is read straight into
// its string. The length is checked against the file size before any allocation (an fstat only
// when the record does not fit in what is buffered), so a corrupt or hostile length cannot
// allocate more than the file holds.
//
// References: tensorflow/core/lib/io/record_reader.cc, record_writer.cc (format, messages);
// tensorflow/core/kernels/text_line_reader_op.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/internal/buffered_file.h"
#include "engine/status.h"

namespace conveyor {

// One record and where it starts in its file.
struct Record {
  std::string data;
  std::uint64_t offset = 0;

  friend bool operator==(const Record&, const Record&) = default;
};

class TextLineReader {
 public:
  // Opens `path`; throws InvalidArgument if it cannot be opened.
  explicit TextLineReader(std::string path,
                          std::size_t buffer_size = internal::kFileBufferSize);
  TextLineReader(TextLineReader&&) noexcept = default;
  TextLineReader& operator=(TextLineReader&&) noexcept = default;

  // The next line, or nullopt at the end of the file.
  std::optional<Record> next();
  std::uint64_t offset() const noexcept { return file_.offset(); }
  const std::string& path() const noexcept { return file_.path(); }

 private:
  internal::BufferedFile file_;
};

class TFRecordReader {
 public:
  // Header and footer sizes of one record: length + length CRC, data CRC.
  static constexpr std::size_t kHeaderSize = 12;
  static constexpr std::size_t kFooterSize = 4;

  // Opens `path`; throws InvalidArgument if it cannot be opened. `buffer_size` >= 16.
  explicit TFRecordReader(std::string path,
                          std::size_t buffer_size = internal::kFileBufferSize);
  TFRecordReader(TFRecordReader&&) noexcept = default;
  TFRecordReader& operator=(TFRecordReader&&) noexcept = default;

  // The next record, or nullopt at the clean end of the file; throws DataLoss (above).
  std::optional<Record> next();
  std::uint64_t offset() const noexcept { return offset_; }
  const std::string& path() const noexcept { return file_.path(); }

 private:
  [[noreturn]] void fail(std::string_view what);

  internal::BufferedFile file_;
  std::uint64_t offset_ = 0;        // start of the next record (of the bad one after a failure)
  std::uint64_t known_size_ = 0;    // file size when last checked (see next())
  std::optional<Error> failure_;    // sticky DataLoss
};

class TFRecordWriter {
 public:
  // Creates or truncates `path`; throws InvalidArgument if it cannot.
  explicit TFRecordWriter(std::string path);
  TFRecordWriter(TFRecordWriter&&) noexcept = default;
  TFRecordWriter& operator=(TFRecordWriter&&) noexcept = default;
  // Closes; errors are lost (call close() to see them).
  ~TFRecordWriter() = default;

  // Appends one record (buffered).
  void write(std::string_view data);
  // Hands buffered records to the kernel (write(2), not fsync).
  void flush() { file_.flush(); }
  // flush() and close the file. A second close() is a no-op.
  void close() { file_.close(); }

  // Bytes written so far (the offset the next record will start at).
  std::uint64_t offset() const noexcept { return file_.offset(); }
  const std::string& path() const noexcept { return file_.path(); }

 private:
  internal::FileWriter file_;
};

// The bytes of one TFRecord-framed record (header, data, footer): what TFRecordWriter::write()
// appends. For tests and tools that build files by hand.
std::string tfrecord_frame(std::string_view data);

}  // namespace conveyor

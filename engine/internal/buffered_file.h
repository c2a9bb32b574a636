// BufferedFile / FileWriter: the file mechanics under the record readers and writer
// (engine/record_reader.h). Not thread-safe; movable, not copyable; the descriptor is closed by
// the destructor.
//
// BufferedFile reads a file front to back through one buffer (256 KiB by default): each refill
// is one read(2) of as much as fits, so records smaller than the buffer cost no syscall of their
// own. Bytes are looked at in place (window()) and then consumed; offset() is the file offset of
// the first unconsumed byte. read() copies bytes out and reads straight into the destination
// once the request is larger than the buffer, so a large record is not copied twice.
//
// FileWriter appends through a buffer of the same size; a write larger than the buffer goes
// straight to write(2).
//
// Errors: open failures are InvalidArgument naming the path and strerror (Conveyor has no
// NotFound kind); read and write failures are Internal naming the path, the offset and strerror.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace conveyor::internal {

inline constexpr std::size_t kFileBufferSize = std::size_t{256} << 10;

// An owned file descriptor (-1 when empty).
class FileDescriptor {
 public:
  FileDescriptor() noexcept = default;
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { reset(); }

  int get() const noexcept { return fd_; }
  int release() noexcept;
  // Closes the descriptor; returns close(2)'s errno, 0 on success or when empty.
  int reset() noexcept;

 private:
  int fd_ = -1;
};

class BufferedFile {
 public:
  // Opens `path` for reading; throws InvalidArgument naming the path if it cannot.
  explicit BufferedFile(std::string path, std::size_t buffer_size = kFileBufferSize);

  BufferedFile(BufferedFile&&) noexcept = default;
  BufferedFile& operator=(BufferedFile&&) noexcept = default;

  // Reads until at least n bytes are in the window or the file ends; returns the window's size
  // (less than n only at end of file). Requires n <= buffer size.
  std::size_t fill(std::size_t n);
  // The buffered, unconsumed bytes.
  std::string_view window() const noexcept { return {buffer_.get() + begin_, end_ - begin_}; }
  // Drops the first n bytes of the window (n <= window().size()).
  void consume(std::size_t n) noexcept {
    begin_ += n;
    offset_ += n;
  }
  // Copies the next n bytes to dst and consumes them; returns how many were copied (less than
  // n only at end of file).
  std::size_t read(char* dst, std::size_t n);
  // Bytes from offset() to the end of the file as it is now (one fstat(2)).
  std::uint64_t remaining() const;

  // File offset of window()'s first byte.
  std::uint64_t offset() const noexcept { return offset_; }
  const std::string& path() const noexcept { return path_; }

 private:
  // One read(2) into [dst, dst + n), retried on EINTR; returns 0 at end of file.
  std::size_t read_some(char* dst, std::size_t n, std::uint64_t at);

  std::string path_;
  FileDescriptor fd_;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;  // window is [begin_, end_) of buffer_
  std::size_t end_ = 0;
  std::uint64_t offset_ = 0;
};

class FileWriter {
 public:
  // Creates or truncates `path`; throws InvalidArgument naming the path if it cannot.
  explicit FileWriter(std::string path, std::size_t buffer_size = kFileBufferSize);
  FileWriter(FileWriter&&) noexcept = default;
  FileWriter& operator=(FileWriter&& other) noexcept;
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;
  // Flushes and closes; errors are lost (call close() to see them).
  ~FileWriter();

  // Appends; throws Internal on a write error, FailedPrecondition after close().
  void append(std::string_view data);
  // Hands the buffered bytes to the kernel (write(2), not fsync).
  void flush();
  // flush(), then close(2); throws as append() does. A second close() is a no-op.
  void close();
  bool is_open() const noexcept { return fd_.get() >= 0; }

  // Bytes appended so far (buffered ones included).
  std::uint64_t offset() const noexcept { return offset_; }
  const std::string& path() const noexcept { return path_; }

 private:
  void write_all(const char* data, std::size_t n);
  void check_open() const;

  std::string path_;
  FileDescriptor fd_;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;      // buffered bytes not yet written
  std::uint64_t offset_ = 0;  // bytes appended
};

}  // namespace conveyor::internal

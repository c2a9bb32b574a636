#include "engine/internal/buffered_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "engine/status.h"

namespace conveyor::internal {
namespace {

std::string quoted(const std::string& path) { return "'" + path + "'"; }

[[noreturn]] void throw_io_error(std::string_view what, const std::string& path,
                                 std::uint64_t offset, int err) {
  throw Error(ErrorKind::kInternal, std::string(what) + " of file " + quoted(path) +
                                        " at offset " + std::to_string(offset) +
                                        " failed: " + std::strerror(err));
}

int open_or_throw(const std::string& path, int flags, std::string_view purpose) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int err = errno;
    throw invalid_argument("path", quoted(path),
                           std::string("cannot be opened for ") + std::string(purpose) + ": " +
                               std::strerror(err));
  }
  return fd;
}

}  // namespace

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.release();
  }
  return *this;
}

int FileDescriptor::release() noexcept { return std::exchange(fd_, -1); }

int FileDescriptor::reset() noexcept {
  const int fd = release();
  if (fd < 0) return 0;
  // Linux closes the descriptor even when close() fails (EINTR included): never retry.
  return ::close(fd) == 0 ? 0 : errno;
}

// ---- BufferedFile -------------------------------------------------------------------------------

BufferedFile::BufferedFile(std::string path, std::size_t buffer_size)
    : path_(std::move(path)),
      fd_(open_or_throw(path_, O_RDONLY, "reading")),
      buffer_(new char[buffer_size]),
      capacity_(buffer_size) {}

std::size_t BufferedFile::read_some(char* dst, std::size_t n, std::uint64_t at) {
  for (;;) {
    const ssize_t got = ::read(fd_.get(), dst, n);
    if (got >= 0) return static_cast<std::size_t>(got);
    if (errno != EINTR) throw_io_error("read", path_, at, errno);
  }
}

std::size_t BufferedFile::fill(std::size_t n) {
  if (end_ - begin_ >= n) return end_ - begin_;
  // Move the window to the front so the rest of the buffer can take one large read.
  if (begin_ > 0) {
    std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  while (end_ < n) {
    const std::size_t got =
        read_some(buffer_.get() + end_, capacity_ - end_, offset_ + end_);
    if (got == 0) break;
    end_ += got;
  }
  return end_;
}

std::size_t BufferedFile::read(char* dst, std::size_t n) {
  std::size_t done = std::min(n, end_ - begin_);
  std::memcpy(dst, buffer_.get() + begin_, done);
  consume(done);
  while (done < n) {
    const std::size_t left = n - done;
    if (left >= capacity_) {
      // Too large for the buffer: straight into the destination.
      const std::size_t got = read_some(dst + done, left, offset_);
      if (got == 0) break;
      done += got;
      offset_ += got;
    } else {
      const std::size_t have = fill(left);
      if (have == 0) break;
      const std::size_t take = std::min(left, have);
      std::memcpy(dst + done, buffer_.get() + begin_, take);
      consume(take);
      done += take;
    }
  }
  return done;
}

std::uint64_t BufferedFile::remaining() const {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) throw_io_error("fstat", path_, offset_, errno);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  return size > offset_ ? size - offset_ : 0;
}

// ---- FileWriter ---------------------------------------------------------------------------------

FileWriter::FileWriter(std::string path, std::size_t buffer_size)
    : path_(std::move(path)),
      fd_(open_or_throw(path_, O_WRONLY | O_CREAT | O_TRUNC, "writing")),
      buffer_(new char[buffer_size]),
      capacity_(buffer_size) {}

FileWriter& FileWriter::operator=(FileWriter&& other) noexcept {
  if (this != &other) {
    try {
      close();
    } catch (...) {  // as in the destructor: errors of an unclosed writer are lost
    }
    path_ = std::move(other.path_);
    fd_ = std::move(other.fd_);
    buffer_ = std::move(other.buffer_);
    capacity_ = std::exchange(other.capacity_, 0);
    size_ = std::exchange(other.size_, 0);
    offset_ = std::exchange(other.offset_, 0);
  }
  return *this;
}

FileWriter::~FileWriter() {
  try {
    close();
  } catch (...) {  // a destructor must not throw; close() explicitly to see write errors
  }
}

void FileWriter::check_open() const {
  if (!is_open()) {
    throw Error(ErrorKind::kFailedPrecondition, "file " + quoted(path_) + " is closed");
  }
}

void FileWriter::write_all(const char* data, std::size_t n) {
  // The file offset of data[0]: everything appended so far minus what is still pending.
  std::uint64_t at = offset_ - size_;
  while (n > 0) {
    const ssize_t put = ::write(fd_.get(), data, n);
    if (put < 0) {
      if (errno == EINTR) continue;
      throw_io_error("write", path_, at, errno);
    }
    data += put;
    n -= static_cast<std::size_t>(put);
    at += static_cast<std::uint64_t>(put);
  }
}

void FileWriter::append(std::string_view data) {
  check_open();
  if (size_ + data.size() <= capacity_) {
    std::memcpy(buffer_.get() + size_, data.data(), data.size());
    size_ += data.size();
    offset_ += data.size();
    return;
  }
  flush();
  if (data.size() >= capacity_) {
    write_all(data.data(), data.size());  // size_ is 0: offset_ is data[0]'s file offset
    offset_ += data.size();
  } else {
    std::memcpy(buffer_.get(), data.data(), data.size());
    size_ = data.size();
    offset_ += data.size();
  }
}

void FileWriter::flush() {
  check_open();
  if (size_ == 0) return;
  write_all(buffer_.get(), size_);
  size_ = 0;
}

void FileWriter::close() {
  if (!is_open()) return;
  flush();
  if (const int err = fd_.reset(); err != 0) throw_io_error("close", path_, offset_, err);
}

}  // namespace conveyor::internal

// Helpers for tests that check what was thrown: kind, message, or a what() string.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <stdexcept>
#include <string>

#include "engine/status.h"

namespace conveyor::testutil {

// Runs f and returns what it threw (null if nothing).
template <class F>
std::exception_ptr thrown_by(F&& f) {
  try {
    f();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

// The message of the conveyor::Error in `e` (without the "<Kind>: " prefix), what() of any
// other std::exception, "" for anything else.
inline std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    return err.message();
  } catch (const std::exception& err) {
    return err.what();
  } catch (...) {
    return "";
  }
}

// what() of the E that f throws; fails the test if it throws none.
template <class E, class F>
std::string what_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception of the expected type thrown";
  return {};
}

}  // namespace conveyor::testutil

// Expects `statement` to throw a conveyor::Error of `kind` whose message contains `text`.
#define EXPECT_ERROR(statement, kind, text)                                                \
  do {                                                                                     \
    const std::exception_ptr e_ =                                                          \
        ::conveyor::testutil::thrown_by([&] { (void)(statement); });                       \
    ASSERT_TRUE(e_) << "no error from " #statement;                                        \
    EXPECT_EQ(::conveyor::kind_of(e_), kind) << ::conveyor::testutil::message_of(e_);      \
    EXPECT_NE(::conveyor::testutil::message_of(e_).find(text), std::string::npos)          \
        << ::conveyor::testutil::message_of(e_);                                           \
  } while (0)

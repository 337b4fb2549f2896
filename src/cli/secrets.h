// Reading passwords and recovery keys (files, /dev/tty) and writing the new
// recovery key, always through sodium memory: never std::string for secrets.
#pragma once

#include <string>

#include "coffer/crypto/crypto.h"
#include "coffer/util/fd.h"
#include "coffer/util/result.h"

namespace coffer::cli {

constexpr size_t kMaxSecretFile = 64 * 1024;
constexpr size_t kMaxPassword = 4096;

// The whole file (at most kMaxSecretFile bytes) in secret memory.
Result<crypto::SecretBytes> read_secret_file(const std::string& path);
// The first line of the file, newline stripped; Code::usage when empty.
Result<crypto::SecretBytes> read_password_file(const std::string& path);
// The recovery key in the file, parsed (raw bytes); a malformed key is
// Code::wrong_key with a message naming the bad group.
Result<crypto::SecretBytes> read_recovery_key_file(const std::string& path);

// Prompts on /dev/tty with echo off. Code::usage when there is no terminal.
Result<crypto::SecretBytes> prompt_password(const std::string& prompt);
// Asks twice and compares; refuses an empty password.
Result<crypto::SecretBytes> prompt_new_password(const std::string& prompt);

// Creates OUT for the recovery key: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600.
// Code::exists when something is already there.
Result<UniqueFd> create_recovery_key_file(const std::string& path);
Status write_all(int fd, ByteSpan data);

extern const char* const kRecoveryKeyWarning;

}  // namespace coffer::cli

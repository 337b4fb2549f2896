#include "coffer/util/private_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace coffer::priv {

namespace {
std::string octal(mode_t m) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
    return buf;
}
}  // namespace

std::string describe_unsafe_dir(const struct stat& st, uid_t uid) {
    if (S_ISLNK(st.st_mode)) return "it is a symbolic link";
    if (!S_ISDIR(st.st_mode)) return "it is not a folder";
    if (st.st_uid != uid)
        return "it belongs to uid " + std::to_string(st.st_uid) + ", not to you (uid " + std::to_string(uid) + ")";
    if ((st.st_mode & 077) != 0) return "its mode is " + octal(st.st_mode) + ", not 0700 (other users may reach it)";
    return "";
}

Status check_private_dir(const std::string& path) {
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) {
        int err = errno;
        if (err == ENOENT) return make_error(Code::not_found, path + " does not exist");
        return sys_error(err, "cannot stat " + path);
    }
    std::string why = describe_unsafe_dir(st, ::geteuid());
    if (!why.empty()) return make_error(Code::permission, path + ": " + why);
    return {};
}

Result<DirState> ensure_private_dir(const std::string& path, bool follow_symlink) {
    DirState out;
    if (::mkdir(path.c_str(), 0700) == 0)
        out.created = true;
    else if (errno != EEXIST)
        return sys_error(errno, "cannot create " + path);
    int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow_symlink ? 0 : O_NOFOLLOW);
    UniqueFd fd(::open(path.c_str(), flags));
    if (!fd) {
        int err = errno;
        struct stat st{};
        if ((err == ELOOP || err == ENOTDIR) && ::lstat(path.c_str(), &st) == 0)
            return make_error(Code::permission, path + ": " + describe_unsafe_dir(st, ::geteuid()));
        return sys_error(err, "cannot open " + path);
    }
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) return sys_error(errno, "cannot stat " + path);
    if (st.st_uid != ::geteuid())
        return make_error(Code::permission, path + ": " + describe_unsafe_dir(st, ::geteuid()));
    if ((st.st_mode & 077) != 0) {
        if (::fchmod(fd.get(), 0700) != 0) return sys_error(errno, "cannot make " + path + " private (chmod 0700)");
        out.tightened_from = st.st_mode & 07777;
    }
    return out;
}

Result<UniqueFd> open_private_file(const std::string& path, int flags) {
    UniqueFd fd(::open(path.c_str(), flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return sys_error(errno, "cannot open " + path);
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) return sys_error(errno, "cannot stat " + path);
    if ((st.st_mode & 077) != 0 && ::fchmod(fd.get(), st.st_mode & 0700) != 0)
        return sys_error(errno, "cannot make " + path + " private (chmod 0600)");
    return fd;
}

Status tighten(const std::string& path) {
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return {};
        return sys_error(errno, "cannot stat " + path);
    }
    if (S_ISLNK(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) == 0) return {};
    if (::chmod(path.c_str(), st.st_mode & 0700) != 0) return sys_error(errno, "cannot make " + path + " private");
    return {};
}

}  // namespace coffer::priv

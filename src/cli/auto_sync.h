// Sync while mounted: publish a while after the last local change, look for
// other devices' segments every interval and at once when inotify on the
// vault's journal folder sees a new one, and tell the kernel what a merge
// changed. `coffer sync` on a mounted folder goes through sync_now too.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "coffer/fuse/session.h"
#include "coffer/sync/sync.h"
#include "coffer/util/fd.h"
#include "coffer/vfs/filesystem.h"

namespace coffer::cli {

class AutoSync {
public:
    struct Options {
        bool enabled = true;
        std::chrono::seconds interval{30};  // publish this long after the last change; look this often
    };
    AutoSync(vfs::Filesystem& fs, fuse::Session& session, std::string vault_dir, Options opts);
    ~AutoSync();  // stops the thread
    AutoSync(const AutoSync&) = delete;
    AutoSync& operator=(const AutoSync&) = delete;

    void start();
    void stop();
    // Publishes, merges, tells the kernel. Thread-safe; one at a time.
    Result<sync::SyncStats> sync_now();

private:
    void loop();
    void watch_journal();

    vfs::Filesystem& fs_;
    fuse::Session& session_;
    std::string vault_dir_;
    Options opts_;
    std::mutex sync_mu_;  // one sync at a time
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    UniqueFd inotify_;
    std::thread thread_;
};

// "published N operations …; merged M segment(s) …", for logs and replies.
std::string sync_summary(const sync::SyncStats& s);

}  // namespace coffer::cli

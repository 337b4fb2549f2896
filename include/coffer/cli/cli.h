#pragma once

namespace coffer::cli {
// The coffer command; returns the process exit code (docs: README "Exit codes").
int main(int argc, char** argv);
}

// Small file-system helpers shared by the loaders and savers.
#pragma once
#include <fstream>
#include <functional>
#include <string>

namespace petcore {

bool file_exists(const std::string& path);
std::string read_text_file(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

// Writes to "<path>.tmp-<pid>" and renames over path only once the write succeeded, so an interrupted save
// never leaves a half-written file where a good one was.
void write_file_atomically(const std::string& path, const std::function<void(std::ofstream&)>& write);

}  // namespace petcore

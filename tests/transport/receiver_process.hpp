// Starts one of the project's Python receivers (tools/mailcatcher.py, tools/webhook_receiver.py)
// on a free port of 127.0.0.1 for a test, and stops it with SIGTERM when the test ends.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace herald::testing {

class ReceiverProcess {
 public:
  // `tool` is a file name under tools/, `args` its arguments besides --port and --port-file.
  // The receiver writes into `dir()` (a fresh temporary directory).
  ReceiverProcess(const std::string& tool, std::vector<std::string> args) {
    char templ[] = "/tmp/herald-test-XXXXXX";
    if (mkdtemp(templ) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    dir_ = templ;
    std::string port_file = dir_ + "/port";
    std::vector<std::string> argv = {
        "/usr/bin/python3", std::string(HERALD_SOURCE_DIR) + "/tools/" + tool,
        "--host",           "127.0.0.1",
        "--port",           "0",
        "--port-file",      port_file};
    for (std::string& a : args) {
      for (size_t pos; (pos = a.find("{dir}")) != std::string::npos;) {
        a.replace(pos, 5, dir_);
      }
      argv.push_back(a);
    }
    std::vector<char*> raw;
    for (std::string& a : argv) {
      raw.push_back(a.data());
    }
    raw.push_back(nullptr);
    if (posix_spawn(&pid_, raw[0], nullptr, nullptr, raw.data(), environ) != 0) {
      throw std::runtime_error("cannot start " + tool);
    }
    // Bounded wait for start-up: the receiver writes its port file once it listens.
    for (int i = 0; i < 400 && port_ == 0; ++i) {
      std::ifstream in(port_file);
      if (!(in >> port_)) {
        port_ = 0;
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          throw std::runtime_error(tool + " exited during start-up");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
      }
    }
    if (port_ == 0) {
      throw std::runtime_error(tool + " did not start listening within 10 s");
    }
  }

  ~ReceiverProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  ReceiverProcess(const ReceiverProcess&) = delete;
  ReceiverProcess& operator=(const ReceiverProcess&) = delete;

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  std::string url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  std::string read(const std::string& name) const {
    std::ifstream in(dir_ + "/" + name, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
};

}  // namespace herald::testing

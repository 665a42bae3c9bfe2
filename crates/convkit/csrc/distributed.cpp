// convkit's distributed layer: a c10d process group (Gloo over TCP) for data-parallel
// training, and a heartbeat that names the rank that died or hung when a collective fails.
// The Rust side is `src/distributed/`.
//
// Rules, as in `libtorch_ext.cpp`:
// - Tensors cross the boundary as tch passes them: `at::Tensor*` (tch's `C_tensor`).
// - No C++ exception crosses into Rust: a function that can fail returns nullptr on
//   success, else a message allocated with malloc that the caller frees with
//   `convkit_free_message` (defined in `libtorch_ext.cpp`).
// - Only c10d's API is used (TCPStore, PrefixStore, ProcessGroupGloo and its Options, Work);
//   Gloo's own headers are needed because ProcessGroupGloo.hpp includes them, but no gloo::
//   type is constructed here: the headers come from Debian and may be older than the Gloo
//   inside libtorch_cpu.
//
// Built without CONVKIT_HAVE_C10D (no Gloo headers found), every function reports that.

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

char* message(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out != nullptr) {
    std::memcpy(out, text.c_str(), text.size() + 1);
  }
  return out;
}

}  // namespace

#ifdef CONVKIT_HAVE_C10D

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace {

std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown C++ exception";
  }
}

template <typename F>
char* protect(F&& body) {
  try {
    body();
    return nullptr;
  } catch (...) {
    return message(describe(std::current_exception()));
  }
}


using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kHeartbeatInterval{1000};
// How long a peer's heartbeat must stand still to be called stopped: three beats.
constexpr milliseconds kStoppedAfter{3000};
// How long the diagnosis waits for the store to answer at all.
constexpr milliseconds kStoreAnswer{5000};

std::string heartbeat_key(int rank) { return "heartbeat/" + std::to_string(rank); }

// A background thread that adds 1 to `<prefix>heartbeat/<rank>` every second over a store
// connection of its own. Its state is shared with the thread, so that a thread blocked in a
// store call (the store's host hung) can be left behind instead of blocking the caller.
class Heartbeat {
 public:
  Heartbeat(c10::intrusive_ptr<c10d::Store> store, int rank)
      : state_(std::make_shared<State>()) {
    state_->store = std::move(store);
    state_->key = heartbeat_key(rank);
    // The first beat before returning: a peer that checks at once sees this rank alive.
    state_->store->add(state_->key, 1);
    thread_ = std::thread([state = state_] { run(*state); });
  }

  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->stop = true;
    }
    state_->wake.notify_all();
    std::unique_lock<std::mutex> lock(state_->mutex);
    // A beat in flight normally ends within milliseconds; one stuck on a hung store must not
    // hold up the training process's exit.
    bool finished = state_->wake.wait_for(lock, std::chrono::seconds(2),
                                          [&] { return state_->finished; });
    lock.unlock();
    if (finished) {
      thread_.join();
    } else {
      thread_.detach();
    }
  }

  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

 private:
  struct State {
    c10::intrusive_ptr<c10d::Store> store;
    std::string key;
    std::mutex mutex;
    std::condition_variable wake;
    bool stop = false;
    bool finished = false;
  };

  static void run(State& state) {
    std::unique_lock<std::mutex> lock(state.mutex);
    while (!state.wake.wait_for(lock, kHeartbeatInterval, [&] { return state.stop; })) {
      lock.unlock();
      try {
        state.store->add(state.key, 1);
      } catch (...) {
        // The store is gone: the diagnosis of the next failed collective says so.
      }
      lock.lock();
    }
    state.finished = true;
    state.wake.notify_all();
  }

  std::shared_ptr<State> state_;
  std::thread thread_;
};

struct Group {
  int rank = 0;
  int size = 0;
  milliseconds timeout{0};
  std::string store_address;  // host:port
  bool agent_store = false;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> backend;
  std::unique_ptr<Heartbeat> heartbeat;
};

std::string rank_prefix(const Group& group) {
  return "rank " + std::to_string(group.rank) + ": ";
}

std::string store_host(const Group& group) {
  return group.agent_store ? "the torchrun agent" : "rank 0";
}

// Reads every other rank's heartbeat for kStoppedAfter and names those that did not advance.
// Runs on its own connection to the store, in a thread that may be left behind when the
// store does not answer.
std::string stopped_ranks(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size) {
  auto read_all = [&] {
    std::vector<int64_t> beats(size, 0);
    for (int other = 0; other < size; ++other) {
      if (other != rank) {
        beats[other] = store->add(heartbeat_key(other), 0);
      }
    }
    return beats;
  };
  std::vector<int64_t> first = read_all();
  std::vector<bool> advanced(size, false);
  advanced[rank] = true;
  auto deadline = Clock::now() + kStoppedAfter;
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(250));
    std::vector<int64_t> now = read_all();
    bool all = true;
    for (int other = 0; other < size; ++other) {
      advanced[other] = advanced[other] || now[other] != first[other];
      all = all && advanced[other];
    }
    if (all) {
      break;
    }
  }
  std::string names;
  int count = 0;
  for (int other = 0; other < size; ++other) {
    if (!advanced[other]) {
      names += (count++ == 0 ? "" : ", ") + std::string("rank ") + std::to_string(other);
    }
  }
  if (count == 0) {
    return "";
  }
  return names + (count == 1 ? " stopped: no heartbeat for " : " stopped: no heartbeats for ") +
         std::to_string(kStoppedAfter.count() / 1000) + " s (killed or hung?)";
}

// Why a collective failed, in words that name the rank concerned.
std::string diagnose(const Group& group, const std::string& what, const std::string& error) {
  std::string head = rank_prefix(group) + what + " failed: ";
  auto store = group.store;
  auto result = std::make_shared<std::promise<std::string>>();
  std::future<std::string> answer = result->get_future();
  int rank = group.rank;
  int size = group.size;
  std::thread([store, result, rank, size] {
    try {
      result->set_value(stopped_ranks(store->clone(), rank, size));
    } catch (...) {
      result->set_exception(std::current_exception());
    }
  }).detach();
  std::string unreachable = "the store at " + group.store_address + " does not answer";
  std::string gone = ": the process hosting it (" + store_host(group) + ") is gone or hung";
  if (answer.wait_for(kStoppedAfter + kStoreAnswer) != std::future_status::ready) {
    return head + unreachable + gone + " [" + error + "]";
  }
  try {
    std::string stopped = answer.get();
    if (!stopped.empty()) {
      return head + stopped + " [" + error + "]";
    }
    return head + error +
           " (every other rank's heartbeat still advances: no rank died; one may be stuck "
           "outside this collective, or the ranks disagree on it)";
  } catch (...) {
    return head + unreachable + " (" + describe(std::current_exception()) + ")" + gone +
           " [" + error + "]";
  }
}

// libtorch's tensors, each made contiguous in the standard layout: ranks may hold the same
// tensor in different layouts (channels_last on one, not on another), and a collective pairs
// the elements of the flat buffers.
struct Buffers {
  std::vector<at::Tensor> originals;
  std::vector<at::Tensor> flat;

  Buffers(at::Tensor* const* items, size_t count) {
    for (size_t i = 0; i < count; ++i) {
      originals.push_back(*items[i]);
      flat.push_back(items[i]->is_contiguous() ? *items[i] : items[i]->contiguous());
    }
  }

  void copy_back() {
    for (size_t i = 0; i < flat.size(); ++i) {
      if (!flat[i].is_same(originals[i])) {
        originals[i].copy_(flat[i]);
      }
    }
  }
};

// Starts `start(tensor)` for every buffer, then waits for all; on failure, diagnoses.
template <typename Start>
char* run_collective(Group& group, const char* what, Buffers& buffers, Start start) {
  std::string error;
  try {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& tensor : buffers.flat) {
      std::vector<at::Tensor> one{tensor};
      works.push_back(start(one));
    }
    std::exception_ptr first_error;
    for (auto& work : works) {
      try {
        work->wait();
      } catch (...) {
        if (!first_error) {
          first_error = std::current_exception();
        }
      }
    }
    if (first_error) {
      std::rethrow_exception(first_error);
    }
    buffers.copy_back();
    return nullptr;
  } catch (...) {
    error = describe(std::current_exception());
  }
  return message(diagnose(group, what, error));
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& master_addr) {
  // As torch.distributed does: GLOO_SOCKET_IFNAME names the interface; otherwise this
  // host's name. When every rank is on this machine (a loopback master), loopback it is.
  if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME")) {
    if (*interface != '\0') {
      return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
    }
  }
  if (master_addr == "localhost" || master_addr.rfind("127.", 0) == 0 || master_addr == "::1") {
    return c10d::ProcessGroupGloo::createDeviceForHostname(master_addr);
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

extern "C" {

// device: 0 CPU (Gloo), 1 CUDA (NCCL, not built). On success `*out` owns the group.
char* convkit_dist_connect(const char* master_addr, uint16_t master_port, int rank,
                           int world_size, bool agent_store, const char* prefix,
                           int64_t timeout_ms, int device, void** out) {
  *out = nullptr;
  auto group = std::make_unique<Group>();
  group->rank = rank;
  group->size = world_size;
  group->timeout = milliseconds(timeout_ms);
  group->agent_store = agent_store;
  group->store_address = std::string(master_addr) + ":" + std::to_string(master_port);
  std::string head = rank_prefix(*group);
  if (device != 0) {
    return message(head + "the NCCL backend (CUDA tensors) is not built into convkit; "
                          "use the CPU (Gloo) or train on one GPU");
  }
  bool is_server = !agent_store && rank == 0;
  c10::intrusive_ptr<c10d::TCPStore> tcp;
  char* failed = protect([&] {
    c10d::TCPStoreOptions options;
    options.port = master_port;
    options.isServer = is_server;
    options.multiTenant = is_server;
    options.numWorkers = static_cast<std::size_t>(world_size);
    options.waitWorkers = true;
    options.timeout = group->timeout;
    tcp = c10::make_intrusive<c10d::TCPStore>(master_addr, options);
  });
  if (failed != nullptr) {
    std::string why(failed);
    std::free(failed);
    std::string what =
        is_server ? "could not host the store at " + group->store_address +
                        " or the other ranks did not all connect to it"
                  : "could not connect to the store at " + group->store_address +
                        " (hosted by " + store_host(*group) + ": is it running?)";
    return message(head + what + " within " + std::to_string(timeout_ms / 1000) + " s: " + why);
  }
  failed = protect([&] {
    group->store = c10::make_intrusive<c10d::PrefixStore>(prefix, tcp);
    group->heartbeat = std::make_unique<Heartbeat>(group->store->clone(), rank);
  });
  if (failed != nullptr) {
    std::string why(failed);
    std::free(failed);
    return message(head + "could not start the heartbeat over the store at " +
                   group->store_address + ": " + why);
  }
  failed = protect([&] {
    auto options = c10d::ProcessGroupGloo::Options::create(group->timeout);
    options->devices.push_back(gloo_device(master_addr));
    // One thread: data-parallel training issues one collective at a time.
    options->threads = 1;
    group->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("gloo/", group->store), rank, world_size,
        options);
  });
  if (failed != nullptr) {
    std::string why(failed);
    std::free(failed);
    return message(diagnose(*group, "connecting the Gloo process group", why));
  }
  *out = group.release();
  return nullptr;
}

void convkit_dist_free(void* group) { delete static_cast<Group*>(group); }

char* convkit_dist_broadcast(void* handle, at::Tensor* const* tensors, size_t count, int root) {
  auto& group = *static_cast<Group*>(handle);
  Buffers buffers(tensors, count);
  return run_collective(group, "broadcast", buffers, [&](std::vector<at::Tensor>& one) {
    c10d::BroadcastOptions options;
    options.rootRank = root;
    options.timeout = group.timeout;
    return group.backend->broadcast(one, options);
  });
}

char* convkit_dist_all_reduce_sum(void* handle, at::Tensor* const* tensors, size_t count) {
  auto& group = *static_cast<Group*>(handle);
  Buffers buffers(tensors, count);
  return run_collective(group, "all_reduce", buffers, [&](std::vector<at::Tensor>& one) {
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    options.timeout = group.timeout;
    return group.backend->allreduce(one, options);
  });
}

char* convkit_dist_barrier(void* handle) {
  auto& group = *static_cast<Group*>(handle);
  std::string error;
  try {
    c10d::BarrierOptions options;
    options.timeout = group.timeout;
    group.backend->barrier(options)->wait();
    return nullptr;
  } catch (...) {
    error = describe(std::current_exception());
  }
  return message(diagnose(group, "barrier", error));
}

bool convkit_dist_is_built() { return true; }

}  // extern "C"

#else  // no c10d: the same functions, each saying so

namespace at {
class Tensor;
}

extern "C" {

char* convkit_dist_connect(const char*, uint16_t, int rank, int, bool, const char*, int64_t,
                           int, void** out) {
  *out = nullptr;
  return message("rank " + std::to_string(rank) +
                 ": this build has no c10d: run `cargo xtask setup` to fetch the Gloo headers");
}

void convkit_dist_free(void*) {}

char* convkit_dist_broadcast(void*, at::Tensor* const*, size_t, int) {
  return message("this build has no c10d");
}

char* convkit_dist_all_reduce_sum(void*, at::Tensor* const*, size_t) {
  return message("this build has no c10d");
}

char* convkit_dist_barrier(void*) { return message("this build has no c10d"); }

bool convkit_dist_is_built() { return false; }

}  // extern "C"

#endif

// The parts of libtorch that convkit needs and tch 0.26 does not expose: inference mode,
// autocast (mixed precision), memory formats, freeing gradients, the multi-tensor
// ("foreach") kernels of the optimizer step, and the CUDA compute capability.
//
// Rules for every function here:
// - Tensors cross the boundary as tch passes them: `at::Tensor*` (tch's `C_tensor`). New
//   tensors are returned as `new at::Tensor(...)`, which tch's `Tensor::from_ptr` owns.
// - No C++ exception crosses into Rust: a function that can fail returns nullptr on
//   success, else a message allocated with malloc that the caller frees with
//   `convkit_free_message`.
// - Guards are heap objects whose constructor saves the thread's previous state and whose
//   destructor restores it, so that guards nest (see `src/runtime/*.rs`).

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

char* message(const char* text) {
  size_t n = std::strlen(text) + 1;
  char* out = static_cast<char*>(std::malloc(n));
  if (out != nullptr) {
    std::memcpy(out, text, n);
  }
  return out;
}

template <typename F>
char* protect(F&& body) {
  try {
    body();
    return nullptr;
  } catch (const c10::Error& e) {
    return message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return message(e.what());
  } catch (...) {
    return message("unknown C++ exception in libtorch");
  }
}

std::vector<at::Tensor> tensors(at::Tensor* const* items, size_t count) {
  std::vector<at::Tensor> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    out.push_back(*items[i]);
  }
  return out;
}

// What torch.autocast saves on entry and restores on exit.
struct AutocastState {
  at::DeviceType device;
  bool previous_enabled;
  at::ScalarType previous_dtype;
  bool previous_cache_enabled;
};

}  // namespace

extern "C" {

void convkit_free_message(char* text) { std::free(text); }

// ---- inference mode -----------------------------------------------------------------

char* convkit_inference_mode_enter(bool enabled, void** guard) {
  return protect([&] { *guard = new c10::InferenceMode(enabled); });
}

void convkit_inference_mode_exit(void* guard) {
  delete static_cast<c10::InferenceMode*>(guard);
}

bool convkit_inference_mode_is_enabled() { return c10::InferenceMode::is_enabled(); }

bool convkit_is_inference_tensor(const at::Tensor* tensor) {
  return tensor->is_inference();
}

bool convkit_grad_mode_is_enabled() { return c10::GradMode::is_enabled(); }

// ---- autocast -------------------------------------------------------------------------

// device: 0 CPU, 1 CUDA (c10::DeviceType); dtype: a c10::ScalarType (15 = BFloat16).
char* convkit_autocast_enter(int device, int dtype, bool enabled, void** state) {
  return protect([&] {
    auto device_type = static_cast<at::DeviceType>(device);
    auto* saved = new AutocastState{
        device_type,
        at::autocast::is_autocast_enabled(device_type),
        at::autocast::get_autocast_dtype(device_type),
        at::autocast::is_autocast_cache_enabled(),
    };
    try {
      at::autocast::set_autocast_dtype(device_type, static_cast<at::ScalarType>(dtype));
      at::autocast::set_autocast_enabled(device_type, enabled);
      at::autocast::increment_nesting();
      at::autocast::set_autocast_cache_enabled(true);
    } catch (...) {
      at::autocast::set_autocast_enabled(device_type, saved->previous_enabled);
      at::autocast::set_autocast_dtype(device_type, saved->previous_dtype);
      delete saved;
      throw;
    }
    *state = saved;
  });
}

void convkit_autocast_exit(void* state) {
  auto* saved = static_cast<AutocastState*>(state);
  // As torch.autocast's __exit__: the cast weights live until the outermost region ends.
  if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
  at::autocast::set_autocast_enabled(saved->device, saved->previous_enabled);
  at::autocast::set_autocast_dtype(saved->device, saved->previous_dtype);
  at::autocast::set_autocast_cache_enabled(saved->previous_cache_enabled);
  delete saved;
}

bool convkit_autocast_is_enabled(int device) {
  return at::autocast::is_autocast_enabled(static_cast<at::DeviceType>(device));
}

int convkit_autocast_dtype(int device) {
  return static_cast<int>(at::autocast::get_autocast_dtype(static_cast<at::DeviceType>(device)));
}

// ---- memory formats -------------------------------------------------------------------

// format: 0 contiguous (NCHW), 1 channels_last (NHWC strides).
char* convkit_contiguous_in(const at::Tensor* tensor, int format, at::Tensor** out) {
  return protect([&] {
    auto memory_format =
        format == 1 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    if (tensor->is_contiguous(memory_format) &&
        tensor->suggest_memory_format() != memory_format) {
      // Dense in both layouts (one channel, or 1x1 maps) but with the other layout's
      // strides, which is what libtorch reads to choose a convolution's layout: restride
      // it, as PyTorch's `.to(memory_format=...)` does.
      *out = new at::Tensor(tensor->clone(memory_format));
    } else {
      *out = new at::Tensor(tensor->contiguous(memory_format));
    }
  });
}

bool convkit_is_contiguous_in(const at::Tensor* tensor, int format) {
  auto memory_format =
      format == 1 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  return tensor->is_contiguous(memory_format);
}

// ---- gradients and the optimizer step ---------------------------------------------------

// Drops the gradient (PyTorch's zero_grad(set_to_none=True)): the next backward writes a
// fresh one instead of adding into a zeroed buffer.
char* convkit_free_grad(at::Tensor* tensor) {
  return protect([&] { tensor->mutable_grad().reset(); });
}

// Keras' RMSprop over a list of parameters, in five multi-tensor kernels:
//   v = rho v + (1 - rho) g^2;  w -= lr g / sqrt(v + epsilon).
char* convkit_rmsprop_step(at::Tensor* const* params, at::Tensor* const* grads,
                           at::Tensor* const* velocities, size_t count, double learning_rate,
                           double rho, double epsilon) {
  return protect([&] {
    if (count == 0) {
      return;
    }
    at::NoGradGuard no_grad;
    auto p = tensors(params, count);
    auto g = tensors(grads, count);
    auto v = tensors(velocities, count);
    at::_foreach_mul_(v, rho);
    at::_foreach_addcmul_(v, g, g, 1.0 - rho);
    auto denominator = at::_foreach_add(v, epsilon);
    at::_foreach_sqrt_(denominator);
    at::_foreach_addcdiv_(p, g, denominator, -learning_rate);
  });
}

// ---- CUDA -----------------------------------------------------------------------------

// The compute capability of CUDA device `index` as major * 10 + minor, or -1 without CUDA.
// Asked of the CUDA runtime that libtorch_cuda loaded, so no CUDA header is needed here.
int convkit_cuda_compute_capability(int index) {
  using GetAttribute = int (*)(int*, int, int);
  auto get = reinterpret_cast<GetAttribute>(dlsym(RTLD_DEFAULT, "cudaDeviceGetAttribute"));
  if (get == nullptr) {
    return -1;
  }
  const int major_attribute = 75;  // cudaDevAttrComputeCapabilityMajor
  const int minor_attribute = 76;  // cudaDevAttrComputeCapabilityMinor
  int major = 0, minor = 0;
  if (get(&major, major_attribute, index) != 0 || get(&minor, minor_attribute, index) != 0) {
    return -1;
  }
  return major * 10 + minor;
}

}  // extern "C"

#pragma once
// NumPy .npy and .npz files (the format of numpy.save / numpy.savez /
// numpy.savez_compressed), read and written without Python.
//
// Supported dtypes: <f8 <f4 <f2 <i8 <i4 <i2 |i1 |u1 |b1 <c8 <c16 and their
// big-endian forms (byte-swapped on load; '<i1'/'<u1' spellings accepted too). Fortran-order
// arrays load as C-contiguous tensors with the same logical layout; 0-d arrays
// load as 0-d tensors and zero-sized shapes are kept. Object arrays ('|O'),
// structured dtypes and unsupported kinds are rejected with an error naming the
// file (and the member for .npz).
#include <ATen/ATen.h>

#include <map>
#include <string>

namespace kinema::io {

// One .npy file -> a CPU tensor that owns its memory.
at::Tensor load_npy(const std::string& path);

// Writes a .npy (format version 1.0, little-endian, C order) atomically. Any
// device / layout is accepted: a contiguous CPU copy is written. Dtypes:
// float64/32/16, int64/32/16/8, uint8, bool, complex64/128 (bfloat16 has no
// NumPy dtype and is rejected).
void save_npy(const std::string& path, const at::Tensor& tensor);

// Parses .npy bytes held in memory; `what` names the source in error messages
// (e.g. "regions.npz:boxes.npy").
at::Tensor parse_npy(const void* data, size_t size, const std::string& what);
// The bytes save_npy would write.
std::string serialize_npy(const at::Tensor& tensor, const std::string& what);

// An .npz archive -> {name: tensor}; names are the member names without the
// trailing ".npy". Stored and deflated members are both read; every member's
// CRC is checked.
std::map<std::string, at::Tensor> load_npz(const std::string& path);

// Writes an .npz atomically; compress=true deflates members like
// numpy.savez_compressed, false stores them like numpy.savez.
void save_npz(const std::string& path, const std::map<std::string, at::Tensor>& arrays,
              bool compress = false);

}  // namespace kinema::io

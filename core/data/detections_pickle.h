#pragma once
// bottom-up-attention.pytorch stores a frame's class ids and confidences in
// 'info', a pickled Python dict saved as a 0-d object array inside the .npz.
// kinema::io::load_npz refuses object arrays, so these two functions read such
// files without Python: the archive members are taken from the zip one by one,
// numeric members are parsed by kinema::io::parse_npy, and 'info' by
// kinema::io's restricted unpickler (numbers, strings, numpy arrays; other
// classes and callables are refused with an error naming the file and the
// global, and nothing is run).
#include <ATen/ATen.h>

#include <map>
#include <string>

namespace kinema::data {

// The members of an .npz whose 'info' (or any other object member) holds a
// pickled dict: numeric members as tensors, and each dict entry of an object
// member as "<member>.<key>" (numbers become 0-d tensors, numpy arrays
// tensors; strings and other values are skipped).
std::map<std::string, at::Tensor> load_npz_with_pickled_dicts(const std::string& path);

// Unpickles numpy.save's payload of a 0-d object array holding a dict (the
// bytes after the .npy header). `what` names the source in errors.
std::map<std::string, at::Tensor> unpickle_numpy_dict(const std::string& bytes, const std::string& what);

}  // namespace kinema::data

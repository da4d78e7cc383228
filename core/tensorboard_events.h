// TensorBoard scalar event files (events.out.tfevents.*), so `tensorboard
// --logdir RUN` shows a run's curves. Records are TFRecord-framed Event
// protocol buffers serialised by libprotobuf from a descriptor of the fields
// TensorBoard's scalar plugin reads (Event.wall_time/step/file_version/summary,
// Summary.value{tag, simple_value}), with TensorBoard's field numbers.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kinema::tensorboard {

// Appends one Event holding the scalars at `step` to the file at path; a new
// or empty file first gets the file_version record. wall_time in seconds
// since the epoch (< 0: now).
void append_scalars(const std::string& path, int64_t step, double wall_time,
                    const std::vector<std::pair<std::string, double>>& scalars);

// CRC-32C (Castagnoli) of data, and the masked form TFRecord stores.
uint32_t crc32c(const std::string& data);
uint32_t masked_crc32c(const std::string& data);

}  // namespace kinema::tensorboard

#include "core/tensorboard_events.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>

namespace kinema::tensorboard {

namespace pb = google::protobuf;

namespace {

void add_field(pb::DescriptorProto* message, const char* name, int number, pb::FieldDescriptorProto::Type type,
               const char* type_name = nullptr, bool repeated = false) {
  pb::FieldDescriptorProto* f = message->add_field();
  f->set_name(name);
  f->set_number(number);
  f->set_type(type);
  f->set_label(repeated ? pb::FieldDescriptorProto::LABEL_REPEATED : pb::FieldDescriptorProto::LABEL_OPTIONAL);
  if (type_name) f->set_type_name(type_name);
}

// tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto,
// reduced to the scalar fields (numbers as there: Event.wall_time = 1, step = 2,
// file_version = 3, summary = 5; Summary.value = 1; Value.tag = 1,
// simple_value = 2).
struct Schema {
  pb::DescriptorPool pool;
  const pb::Descriptor* event = nullptr;
  pb::DynamicMessageFactory factory;

  Schema() {
    pb::FileDescriptorProto file;
    file.set_name("kinema/tensorboard_event.proto");
    file.set_package("kinema.tensorboard");
    file.set_syntax("proto3");
    pb::DescriptorProto* value = file.add_message_type();
    value->set_name("SummaryValue");
    add_field(value, "tag", 1, pb::FieldDescriptorProto::TYPE_STRING);
    // in TensorBoard's schema simple_value is a member of `oneof value`, which
    // is what makes a 0.0 go on the wire (a plain proto3 field would drop it)
    value->add_oneof_decl()->set_name("value");
    add_field(value, "simple_value", 2, pb::FieldDescriptorProto::TYPE_FLOAT);
    value->mutable_field(1)->set_oneof_index(0);
    pb::DescriptorProto* summary = file.add_message_type();
    summary->set_name("Summary");
    add_field(summary, "value", 1, pb::FieldDescriptorProto::TYPE_MESSAGE, ".kinema.tensorboard.SummaryValue", true);
    pb::DescriptorProto* event_msg = file.add_message_type();
    event_msg->set_name("Event");
    add_field(event_msg, "wall_time", 1, pb::FieldDescriptorProto::TYPE_DOUBLE);
    add_field(event_msg, "step", 2, pb::FieldDescriptorProto::TYPE_INT64);
    add_field(event_msg, "file_version", 3, pb::FieldDescriptorProto::TYPE_STRING);
    add_field(event_msg, "summary", 5, pb::FieldDescriptorProto::TYPE_MESSAGE, ".kinema.tensorboard.Summary");
    if (!pool.BuildFile(file)) throw std::runtime_error("tensorboard: cannot build the Event descriptor");
    event = pool.FindMessageTypeByName("kinema.tensorboard.Event");
  }
};

Schema& schema() {
  static Schema s;
  return s;
}

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (0x82F63B78u ^ (c >> 1)) : (c >> 1);  // reflected Castagnoli
    table[i] = c;
  }
  return table;
}

std::string framed(const std::string& data) {
  std::string out;
  const uint64_t length = data.size();
  std::string length_bytes(8, '\0');
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<char>((length >> (8 * i)) & 0xFF);
  auto le32 = [](uint32_t v) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
    return s;
  };
  out += length_bytes;
  out += le32(masked_crc32c(length_bytes));
  out += data;
  out += le32(masked_crc32c(data));
  return out;
}

std::string serialize_event(double wall_time, int64_t step, const std::string* file_version,
                            const std::vector<std::pair<std::string, double>>* scalars) {
  Schema& s = schema();
  std::unique_ptr<pb::Message> event(s.factory.GetPrototype(s.event)->New());
  const pb::Reflection* r = event->GetReflection();
  r->SetDouble(event.get(), s.event->FindFieldByName("wall_time"), wall_time);
  r->SetInt64(event.get(), s.event->FindFieldByName("step"), step);
  if (file_version) r->SetString(event.get(), s.event->FindFieldByName("file_version"), *file_version);
  if (scalars) {
    pb::Message* summary = r->MutableMessage(event.get(), s.event->FindFieldByName("summary"), &s.factory);
    const pb::Reflection* sr = summary->GetReflection();
    const pb::FieldDescriptor* values = summary->GetDescriptor()->FindFieldByName("value");
    for (const auto& [tag, v] : *scalars) {
      pb::Message* value = sr->AddMessage(summary, values, &s.factory);
      const pb::Reflection* vr = value->GetReflection();
      vr->SetString(value, value->GetDescriptor()->FindFieldByName("tag"), tag);
      vr->SetFloat(value, value->GetDescriptor()->FindFieldByName("simple_value"), static_cast<float>(v));
    }
  }
  std::string out;
  if (!event->SerializeToString(&out)) throw std::runtime_error("tensorboard: cannot serialise an event");
  return out;
}

}  // namespace

uint32_t crc32c(const std::string& data) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const std::string& data) {
  const uint32_t c = crc32c(data);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

void append_scalars(const std::string& path, int64_t step, double wall_time,
                    const std::vector<std::pair<std::string, double>>& scalars) {
  if (wall_time < 0) {
    wall_time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  std::FILE* f = std::fopen(path.c_str(), "ab");
  if (!f) throw std::runtime_error("tensorboard: cannot open '" + path + "' for appending");
  std::string bytes;
  std::fseek(f, 0, SEEK_END);
  if (std::ftell(f) == 0) {
    const std::string version = "brain.Event:2";
    bytes += framed(serialize_event(wall_time, 0, &version, nullptr));
  }
  bytes += framed(serialize_event(wall_time, step, nullptr, &scalars));
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) throw std::runtime_error("tensorboard: cannot write '" + path + "'");
}

}  // namespace kinema::tensorboard

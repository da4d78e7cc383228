// TrajectoryEncoder, ActionEncoder (STOA-VLP), grouping blocks (S-ViLM) and the
// RegionEncoder (DemoVLP): shapes, class selection, masking, gradients.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include "models/block.h"
#include "models/grouping.h"
#include "models/region_encoder.h"
#include "models/trajectory_encoder.h"
#include "models/video_encoder.h"
#include "models_test_util.h"

using namespace kinema::models;
using namespace kinema::models::testing;

static TrajectoryEncoderOptions tiny_trajectory() {
  TrajectoryEncoderOptions o;
  o.num_frames = 3;
  o.num_trajectories = 4;
  o.roi_size = 2;
  o.out_dim = 8;
  o.layer.dim = 16;
  o.layer.num_heads = 2;
  return o;
}

TEST_CASE("TrajectoryEncoder: top-N classes by summed confidence, masked per class") {
  torch::manual_seed(0);
  TrajectoryEncoder enc(tiny_trajectory());
  at::Tensor patches = torch::randn({1, 2, 1 + 9, 16});  // [CLS] + 3x3 grid
  at::Tensor boxes = torch::tensor({0.0, 0.0, 0.5, 0.5, 0.2, 0.2, 0.9, 0.8, 0.0, 0.0, 0.1, 0.1,
                                    0.1, 0.0, 0.6, 0.5, 0.5, 0.5, 1.0, 1.0, 0.3, 0.3, 0.7, 0.9})
                         .view({1, 2, 3, 4});
  at::Tensor classes = torch::tensor({0, 5, -1, 5, 2, 0}, torch::kLong).view({1, 2, 3});
  at::Tensor scores = torch::tensor({0.9, 0.8, 0.0, 0.7, 0.95, 0.1}).view({1, 2, 3});
  auto r = enc->forward(patches, boxes, classes, scores);
  // Summed confidence: class 5 -> 1.5, class 0 -> 1.0, class 2 -> 0.95; a 4th is absent.
  CHECK(r.trajectory_class.equal(torch::tensor({{5, 0, 2, -1}}, torch::kLong)));
  CHECK(r.trajectory_mask.equal(torch::tensor({{1, 1, 1, 0}}, torch::kBool)));
  CHECK(r.trajectories.sizes() == at::IntArrayRef({1, 4, 8}));
  CHECK(r.object_tokens.sizes() == at::IntArrayRef({1, 2, 3, 16}));
  CHECK(r.object_mask.equal(classes.ge(0)));
  // Moving the class-2 box changes only the class-2 trajectory.
  at::Tensor moved = boxes.clone();
  moved[0][1][1] = torch::tensor({0.0, 0.0, 0.4, 0.4});
  auto r2 = enc->forward(patches, moved, classes, scores);
  CHECK(max_abs_diff(r.trajectories.narrow(1, 0, 2), r2.trajectories.narrow(1, 0, 2)) < 1e-6);
  CHECK(max_abs_diff(r.trajectories[0][2], r2.trajectories[0][2]) > 1e-5);
  // A grid without [CLS] is accepted as is.
  auto r3 = enc->forward(patches.narrow(2, 1, 9), boxes, classes, scores);
  CHECK(max_abs_diff(r.trajectories, r3.trajectories) < 1e-6);
  check_error([&] { enc->forward(torch::randn({1, 2, 7, 16}), boxes, classes, scores); }, "square grid");
  check_error([&] { enc->forward(patches, boxes, classes.to(torch::kInt), scores); }, "classes");
}

TEST_CASE("TrajectoryEncoder and ActionEncoder blocks: gradients and outputs") {
  torch::manual_seed(1);
  auto traj = make_block("TrajectoryEncoder", config({{"num_frames", 2}, {"num_trajectories", 2}, {"roi_size", 2},
                                                      {"out_dim", 8}, {"embed_dim", 16}, {"num_heads", 2}}));
  auto action = make_block("ActionEncoder", config({{"num_frames", 2}, {"num_queries", 3}, {"out_dim", 8},
                                                    {"embed_dim", 16}, {"num_heads", 2}}));
  at::Tensor patches = torch::randn({2, 2, 1 + 4, 16}, torch::requires_grad());
  at::Tensor boxes = torch::rand({2, 2, 3, 2}) * 0.5;
  boxes = torch::cat({boxes, boxes + 0.4}, -1);
  at::Tensor classes = torch::tensor({0, 1, 1, 0, 1, -1, 2, 2, 3, 3, 2, 2}, torch::kLong).view({2, 2, 3});
  at::Tensor scores = torch::rand({2, 2, 3});
  auto t = traj->forward({patches, boxes, classes, scores});
  at::Tensor objects = output(t, "object_tokens"), object_mask = output(t, "object_mask");
  auto a = action->forward({patches, objects, object_mask});
  CHECK(output(a, "actions").sizes() == at::IntArrayRef({2, 3, 8}));
  CHECK(output(a, "frame_features").sizes() == at::IntArrayRef({2, 3, 2, 16}));
  at::Tensor attention = output(a, "attention");  // [B, T, M, 4 patches + 3 objects]
  CHECK(attention.sizes() == at::IntArrayRef({2, 2, 3, 7}));
  CHECK(max_abs_diff(attention.sum(-1), torch::ones({2, 2, 3})) < 1e-5);
  CHECK(attention[0][1].select(1, 4 + 2).abs().max().item<double>() == 0.0);  // the missing box
  (output(t, "trajectories").sum() + output(a, "actions").pow(2).sum()).backward();
  check_gradients(*traj);
  check_gradients(*action);
  CHECK(patches.grad().abs().sum().item<double>() > 0);
  // Without object tokens the queries attend over the patches only.
  auto a2 = action->forward({patches.detach()});
  CHECK(output(a2, "attention").size(3) == 4);
}

TEST_CASE("GroupingBlock: one group per token, masked tokens in none, seeded gumbel") {
  torch::manual_seed(2);
  GroupingOptions o;
  o.dim = 16;
  o.num_heads = 2;
  GroupingBlock block(o);
  at::Tensor groups = torch::randn({2, 3, 16}), tokens = torch::randn({2, 10, 16});
  at::Tensor mask = torch::ones({2, 10}, torch::kBool);
  mask[1].narrow(0, 7, 3).fill_(false);
  block->eval();
  auto r = block->forward(groups, tokens, mask);
  CHECK(r.groups.sizes() == at::IntArrayRef({2, 3, 16}));
  CHECK(r.assignment.sizes() == at::IntArrayRef({2, 3, 10}));
  CHECK(max_abs_diff(r.assignment.sum(1), mask.to(torch::kFloat)) < 1e-6);
  CHECK(((r.assignment == 0) | (r.assignment == 1)).all().item<bool>());
  CHECK(block->forward(groups, tokens, mask).groups.equal(r.groups));  // eval: no noise
  block->train();
  torch::manual_seed(5);
  auto g1 = block->forward(groups, tokens, mask);
  torch::manual_seed(5);
  auto g2 = block->forward(groups, tokens, mask);
  CHECK(g1.groups.equal(g2.groups));
  CHECK(max_abs_diff(g1.assignment.sum(1), mask.to(torch::kFloat)) < 1e-6);
}

TEST_CASE("GroupingBlock block: learned group tokens by default, chained groups, config errors") {
  torch::manual_seed(6);
  auto block = make_block("GroupingBlock", config({{"embed_dim", 16}, {"num_heads", 2}, {"num_groups", 3}}));
  CHECK(block->named_parameters()["group_token"].sizes() == at::IntArrayRef({1, 3, 16}));
  block->eval();
  at::Tensor tokens = torch::randn({2, 7, 16});
  auto first = block->forward({tokens});
  at::Tensor groups = output(first, "groups");
  CHECK(groups.sizes() == at::IntArrayRef({2, 3, 16}));
  CHECK(output(first, "assignment").sizes() == at::IntArrayRef({2, 3, 7}));
  // Passing the learned tokens explicitly is the same call; chaining feeds groups back.
  at::Tensor learned = block->named_parameters()["group_token"].expand({2, 3, 16});
  CHECK(max_abs_diff(output(block->forward({tokens, learned}), "groups"), groups) == 0.0);
  CHECK(max_abs_diff(output(block->forward({tokens, groups}), "groups"), groups) > 1e-5);
  check_error([] { make_block("GroupingBlock", config({{"embed_dim", 16}, {"num_heads", 2}, {"tau", 0.0}})); }, "'tau'");
  check_error([&] { block->forward({tokens, torch::randn({2, 3, 8})}); }, "groups");
}

TEST_CASE("VideoEncoder with grouping blocks after layers 1 and 2 outputs trained group tokens") {
  torch::manual_seed(3);
  VideoEncoderOptions o;
  o.image_size = 32;
  o.num_frames = 2;
  o.depth = 2;
  o.layer.dim = 16;
  o.layer.num_heads = 2;
  o.attention = "joint";
  o.grouping_layers = {1, 2};
  o.num_groups = 4;
  VideoEncoder enc(o);
  auto r = enc->forward(torch::randn({2, 2, 3, 32, 32}));
  CHECK(r.groups.sizes() == at::IntArrayRef({2, 4, 16}));
  REQUIRE(r.assignments.size() == 2);
  CHECK(r.assignments[0].sizes() == at::IntArrayRef({2, 4, 2 * 4}));
  r.groups.pow(2).sum().backward();
  check_gradients(*enc, {"norm.weight", "norm.bias"});  // the final token norm does not feed the groups
  CHECK_FALSE(enc->named_parameters()["norm.weight"].grad().defined());
  CHECK(enc->named_parameters()["group_token"].grad().abs().sum().item<double>() > 0);
  CHECK(enc->named_parameters().contains("grouping.1.assign.q.weight"));
}

TEST_CASE("RegionEncoder: location + temporal embeddings, [CLS], padding") {
  torch::manual_seed(4);
  auto block = make_block("RegionEncoder", config({{"feat_dim", 12}, {"num_frames", 3}, {"depth", 2},
                                                   {"embed_dim", 16}, {"num_heads", 2}}));
  at::Tensor feats = torch::randn({2, 5, 12}), loc = torch::rand({2, 5, 7});
  at::Tensor frame = torch::tensor({0, 0, 1, 2, 2, 0, 1, 1, 2, 0}, torch::kLong).view({2, 5});
  at::Tensor mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, torch::kBool).view({2, 5});
  auto out = block->forward({feats, loc, frame, mask});
  CHECK(output(out, "tokens").sizes() == at::IntArrayRef({2, 6, 16}));
  CHECK(output(out, "regions").sizes() == at::IntArrayRef({2, 5, 16}));
  CHECK(max_abs_diff(output(out, "cls"), output(out, "tokens").select(1, 0)) == 0.0);
  at::Tensor feats2 = feats.clone();
  feats2[1][4].add_(3.0);  // a padded region
  auto out2 = block->forward({feats2, loc, frame, mask});
  CHECK(max_abs_diff(output(out, "tokens")[1].narrow(0, 0, 4), output(out2, "tokens")[1].narrow(0, 0, 4)) < 1e-6);
  output(out, "cls").sum().backward();
  check_gradients(*block);
  for (const char* n : {"feat_proj.weight", "loc_embed.weight", "time_embed", "cls_token", "blocks.1.attn.qkv.weight"})
    CHECK_MESSAGE(block->named_parameters().contains(n), n);
  check_error([&] { block->forward({feats, loc, frame + 2, mask}); }, "frame_index");
  check_error([&] { block->forward({feats, loc.narrow(2, 0, 4), frame}); }, "locations");
}

TEST_CASE("make_block reports unknown blocks") {
  check_error([] { make_block("VideoEncodr", Config()); }, "VideoEncodr");
  const auto& blocks = registered_blocks();
  for (const char* n : {"VideoEncoder", "TextEncoder", "FusionEncoder", "TrajectoryEncoder", "ActionEncoder",
                        "RegionEncoder", "GroupingBlock", "Projection", "Temperature", "VTMHead", "MLMHead"}) {
    REQUIRE_MESSAGE(blocks.count(n), n);
    CHECK(blocks.at(n).doc.find("Config") != std::string::npos);
  }
}

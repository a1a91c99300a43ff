// node tfjs_weights.js MODEL_JS SHARD_JS OUTDIR
//
// A TensorFlow.js model shipped as JavaScript modules (the npm package
// nsfwjs bundles its MobileNetV2 so: model.min.js exports {modelTopology,
// weightsManifest}, group1-shard1of1.min.js exports the weights as base64)
// -> OUTDIR/manifest.json ({"weights": [...], "layers": [...]}) and
// OUTDIR/weights.bin (the raw weight bytes), which lsmodel.read_keras_weights
// reads. Only one weight group of one shard is supported: that is what the
// package has.
"use strict";
const fs = require("fs");
const path = require("path");

const [modelJs, shardJs, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node tfjs_weights.js MODEL_JS SHARD_JS OUTDIR");
  process.exit(2);
}
const model = require(path.resolve(modelJs));
const shard = require(path.resolve(shardJs));
if (!model.weightsManifest || model.weightsManifest.length !== 1 || model.weightsManifest[0].paths.length !== 1) {
  console.error(modelJs + ": want one weights group in one shard");
  process.exit(1);
}
if (typeof shard !== "string") {
  console.error(shardJs + ": want a base64 string export");
  process.exit(1);
}
const layers = model.modelTopology.model_config.config.layers.map((l) => ({name: l.name, class_name: l.class_name}));
fs.mkdirSync(out, {recursive: true});
fs.writeFileSync(path.join(out, "manifest.json"), JSON.stringify({weights: model.weightsManifest[0].weights, layers}, null, 1));
fs.writeFileSync(path.join(out, "weights.bin"), Buffer.from(shard, "base64"));

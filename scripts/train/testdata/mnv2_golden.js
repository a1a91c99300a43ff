// How mnv2_block12_noise64.f32 was made (not run by the tests; needs
// `npm install @tensorflow/tfjs@4` and the unpacked npm package nsfwjs@4.4.0):
//   python3 -c "import numpy as np; np.random.default_rng(0).uniform(-1,1,(64,64)).astype('<f4').tofile('in_noise64.f32')"
//   node mnv2_golden.js PACKAGE_DIR   (PACKAGE_DIR = the tarball's package/)
// It loads the package's Keras MobileNetV2 with TensorFlow.js (CPU backend),
// cuts it after block_12_add, feeds the noise as R=G=B and writes that
// layer's output as float32 NCHW [1,96,4,4].
const tf = require("@tensorflow/tfjs");
const fs = require("fs");
const path = require("path");
const D = path.resolve(process.argv[2] || "package", "dist/models/mobilenet_v2");
const {modelTopology, weightsManifest} = require(path.join(D, "model.min.js"));
const b64 = require(path.join(D, "group1-shard1of1.min.js"));
(async () => {
  await tf.setBackend("cpu");
  const buf = Buffer.from(b64, "base64");
  const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const topo = JSON.parse(JSON.stringify(modelTopology));
  const inp = topo.model_config.config.layers.find((l) => l.class_name === "InputLayer");
  inp.config.batch_input_shape = [null, null, null, 3];
  const cfg = topo.model_config.config;
  cfg.layers = cfg.layers.slice(0, cfg.layers.findIndex((l) => l.name === "block_12_add") + 1);
  cfg.output_layers = [["block_12_add", 0, 0]];
  const model = await tf.loadLayersModel(
    {load: async () => ({modelTopology: topo, weightSpecs: weightsManifest[0].weights, weightData})}, {strict: false});
  const raw = fs.readFileSync("in_noise64.f32");
  const g = new Float32Array(raw.buffer, raw.byteOffset, 64 * 64);
  const y = model.predict(tf.tensor4d(g, [1, 64, 64, 1]).tile([1, 1, 1, 3]));
  const nchw = y.transpose([0, 3, 1, 2]);
  fs.writeFileSync("mnv2_block12_noise64.f32", Buffer.from((await nchw.data()).buffer));
})();

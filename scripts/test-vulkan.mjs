#!/usr/bin/env node
// `npm run test:vulkan`: the device path run for real on ggml's Vulkan backend. Builds the addon
// with GGML_VULKAN into build/vulkan (and the parity tests' reference tool there, libllama on the
// same Vulkan ggml), then runs the device tests, the parity tests and the engine tests with
// `device: 'vulkan:0'`. Where no GPU is, the device is Mesa's lavapipe (a Vulkan driver that runs
// on the CPU): ggml-vulkan skips CPU-type devices unless GGML_VK_VISIBLE_DEVICES names them,
// which this sets to 0 when it is not set. The system packages are installed when missing; on
// Debian 12 the Vulkan headers and lavapipe come from newer Debian suites, unpacked under build/
// (scripts/lib/vulkan.mjs says why).
//
//   npm run test:vulkan [-- ava arguments: files, --match ...]
//   GPT2_NODE_TEST_DEVICE=vulkan:1 npm run test:vulkan   another Vulkan device
//
// Ends with the plain line "N passed, N failed" (ava's TAP counted as .ci/run counts it).
// Not part of `npm test`: the Vulkan build alone takes about 10 minutes on two cores.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { buildRefTool, tapSummary } from './lib/check-helpers.mjs';
import { cmakeJs, materializeVendor, root } from './lib/native-build.mjs';
import { installVulkanPackages, lavapipeEnv, vulkanIncludeDir } from './lib/vulkan.mjs';

const avaArgs = process.argv.slice(2);
const buildDir = join(root, 'build', 'vulkan');

installVulkanPackages();
const include = vulkanIncludeDir(join(root, 'build', 'vulkan-headers'));
materializeVendor();
// configure every time, so that a changed option takes effect (then an incremental build)
cmakeJs('configure', ['-O', buildDir, '--CDGGML_VULKAN=ON', `--CDVulkan_INCLUDE_DIR=${include}`]);
cmakeJs('build', ['-O', buildDir]);
const binary = join(buildDir, 'Release', 'gpt2_node.node');
if (!existsSync(binary)) throw new Error(`no ${binary} after the build`);
const refTool = buildRefTool(buildDir);
if (!refTool) throw new Error('building gpt2-llama-ref on the Vulkan ggml failed');

const env = {
  ...process.env,
  ...lavapipeEnv(join(root, 'build', 'lavapipe')),   // Debian 12: a lavapipe without Mesa 22.3's race
  GPT2_NODE_BINARY: binary,
  GPT2_NODE_REF_TOOL: refTool,
  GGML_VK_VISIBLE_DEVICES: process.env.GGML_VK_VISIBLE_DEVICES ?? '0',
  GPT2_NODE_TEST_DEVICE: process.env.GPT2_NODE_TEST_DEVICE ?? 'vulkan:0',
};
// The device tests (test/device/: parity with the CPU and with libllama's Vulkan build, offload,
// device selection, batch invariance), then the engine's tests with every model on the device
// (GPT2_NODE_DEVICE: loadModel's default device).
const files = avaArgs.length > 0 ? avaArgs : ['test/api/devices.test.ts', 'test/device/'];
const engineFiles = avaArgs.length > 0 ? [] : ['test/api/engine-features.test.ts', 'test/api/lifecycle.test.ts', 'test/api/sampling.test.ts'];
const ava = join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
let passed = 0, failed = 0;
for (const [group, extra] of [[files, {}], [engineFiles, { GPT2_NODE_DEVICE: env.GPT2_NODE_TEST_DEVICE }]]) {
  if (group.length === 0) continue;
  console.log(`== ${group.join(' ')}${extra.GPT2_NODE_DEVICE ? ` (GPT2_NODE_DEVICE=${extra.GPT2_NODE_DEVICE})` : ''}`);
  const r = spawnSync(process.execPath, [ava, '--tap', '--timeout', '20m', ...group], { cwd: root, env: { ...env, ...extra }, encoding: 'utf8', maxBuffer: 1 << 30 });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  const s = tapSummary(r.stdout, r.status);
  passed += s.passed;
  failed += s.failed;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);

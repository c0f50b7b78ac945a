# A thin shim for node-gyp-driven tools (@electron/rebuild decides that a module is native by the
# presence of binding.gyp). It runs the CMake build through the project's install script; every
# source and flag lives in CMakeLists.txt only. npm itself does not use this file ("gypfile": false).
{
  "targets": [
    {
      "target_name": "gpt2_node",
      "type": "none",
      "actions": [
        {
          "action_name": "cmake_build",
          "inputs": [ "CMakeLists.txt" ],
          "outputs": [ "build/Release/gpt2_node.node" ],
          "action": [ "node", "scripts/install.mjs", "--native-only" ]
        }
      ]
    }
  ]
}

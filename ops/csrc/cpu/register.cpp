// The `det` operator namespace and the Python module entry point of det.ops._C.
// Each kernel file adds its schemas with TORCH_LIBRARY_FRAGMENT(det, m).
#include <Python.h>
#include <torch/library.h>

#ifndef DET_OPS_SOURCE_HASH
#define DET_OPS_SOURCE_HASH unknown
#endif
#define DET_STR2(x) #x
#define DET_STR(x) DET_STR2(x)

TORCH_LIBRARY(det, m) {}

static PyModuleDef det_ops_module = {PyModuleDef_HEAD_INIT, "_C", "det compiled ops", -1, nullptr};

PyMODINIT_FUNC PyInit__C(void) {
  PyObject* module = PyModule_Create(&det_ops_module);
  if (module != nullptr) {
    PyModule_AddStringConstant(module, "SOURCE_HASH", DET_STR(DET_OPS_SOURCE_HASH));
  }
  return module;
}

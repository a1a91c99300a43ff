package onnx

/*
#cgo CFLAGS: -I${SRCDIR}/capi
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include "onnxruntime_c_api.h"

typedef const OrtApiBase* (*get_api_base_fn)(void);

// ls_available_providers dlopens the already-loaded library (RTLD_NOLOAD keeps
// it from loading a second copy), asks ONNX Runtime for the execution
// providers compiled into it, and returns them as a malloc'd, NUL-separated
// list. It returns NULL and sets *err on failure.
static char* ls_available_providers(const char* path, int* count, const char** err) {
	void* h = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
	if (!h) { *err = "library not loaded"; return NULL; }
	get_api_base_fn get = (get_api_base_fn)dlsym(h, "OrtGetApiBase");
	if (!get) { dlclose(h); *err = "OrtGetApiBase not found"; return NULL; }
	const OrtApi* api = get()->GetApi(ORT_API_VERSION);
	if (!api) { dlclose(h); *err = "ONNX Runtime does not support API version 24"; return NULL; }
	char** names = NULL; int n = 0;
	OrtStatus* st = api->GetAvailableProviders(&names, &n);
	if (st) { api->ReleaseStatus(st); dlclose(h); *err = "GetAvailableProviders failed"; return NULL; }
	size_t total = 1;
	for (int i = 0; i < n; i++) total += strlen(names[i]) + 1;
	char* out = malloc(total); char* p = out;
	for (int i = 0; i < n; i++) { size_t l = strlen(names[i]); memcpy(p, names[i], l + 1); p += l + 1; }
	*p = 0;
	OrtStatus* rs = api->ReleaseAvailableProviders(names, n);
	if (rs) api->ReleaseStatus(rs);
	dlclose(h);
	*count = n;
	return out;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Execution provider names as ONNX Runtime reports them, by config name.
var ortProviderNames = map[string]string{
	ProviderCPU:      "CPUExecutionProvider",
	ProviderCUDA:     "CUDAExecutionProvider",
	ProviderTensorRT: "TensorrtExecutionProvider",
	ProviderOpenVINO: "OpenVINOExecutionProvider",
	ProviderCoreML:   "CoreMLExecutionProvider",
	ProviderQNN:      "QNNExecutionProvider",
	ProviderDML:      "DmlExecutionProvider",
}

// AvailableProviders returns the execution providers compiled into the
// loaded library, as config names (cpu, cuda, ...), in ONNX Runtime's order
// of preference. A provider listed here may still fail to start when its
// own libraries or device are missing on this machine.
func (r *Runtime) AvailableProviders() ([]string, error) {
	cpath := C.CString(r.path)
	defer C.free(unsafe.Pointer(cpath))
	var n C.int
	var cerr *C.char
	list := C.ls_available_providers(cpath, &n, &cerr)
	if list == nil {
		return nil, fmt.Errorf("list execution providers: %s", C.GoString(cerr))
	}
	defer C.free(unsafe.Pointer(list))
	byORT := map[string]string{}
	for k, v := range ortProviderNames {
		byORT[v] = k
	}
	var out []string
	p := unsafe.Pointer(list)
	for i := 0; i < int(n); i++ {
		name := C.GoString((*C.char)(p))
		p = unsafe.Add(p, len(name)+1)
		if cfg, ok := byORT[name]; ok {
			out = append(out, cfg)
		} else {
			out = append(out, name) // a provider LineSight has no config name for
		}
	}
	if len(out) == 0 {
		return nil, errors.New("list execution providers: ONNX Runtime reported none")
	}
	return out, nil
}

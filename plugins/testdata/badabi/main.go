// Command badabi is a module built for a future ABI (marker pulpo_abi_version_2_0): the
// host must refuse it before compiling, naming the version.
package main

//go:wasmexport pulpo_abi_version_2_0
func marker() {}

//go:wasmexport describe
func describe() int32 { return 1 }

func main() {}

// Command noexport carries the ABI marker but lacks the required describe export: the host
// must refuse it, naming the export.
package main

//go:wasmexport pulpo_abi_version_1_0
func marker() {}

//go:wasmexport sync_first_stage
func syncFirstStage() int32 { return 1 }

func main() {}

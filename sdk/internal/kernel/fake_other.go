//go:build !wasip1

package kernel

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// fake is an in-memory stand-in for the kernel, used when the SDK runs natively. It keeps
// blocks in one byte slice, like the real kernel, and panics on the misuse the real kernel
// would punish (unaligned u64 access is allowed by wazero, so it is here too).
var fake = struct {
	sync.Mutex
	mem    []byte
	blocks map[uint64]uint64 // offset -> length
	input  []byte
	output []byte
	errMsg string
	logs   []string
	calls  int // kernel calls, to check that copies go 8 bytes at a time
}{mem: make([]byte, 8), blocks: map[uint64]uint64{}}

func alloc(n uint64) uint64 {
	fake.Lock()
	defer fake.Unlock()
	fake.calls++
	if n == 0 {
		return 0
	}
	p := uint64(len(fake.mem))
	fake.mem = append(fake.mem, make([]byte, n)...)
	fake.blocks[p] = n
	return p
}

func free(p uint64) {
	fake.Lock()
	defer fake.Unlock()
	fake.calls++
	if _, ok := fake.blocks[p]; !ok {
		panic(fmt.Sprintf("kernel: free of unknown block %d", p))
	}
	delete(fake.blocks, p)
}

func lengthUnsafe(p uint64) uint64 {
	fake.Lock()
	defer fake.Unlock()
	fake.calls++
	n, ok := fake.blocks[p]
	if !ok {
		panic(fmt.Sprintf("kernel: length of unknown block %d", p))
	}
	return n
}

func loadU8(p uint64) uint32 {
	fake.Lock()
	defer fake.Unlock()
	fake.calls++
	return uint32(fake.mem[p])
}

func loadU64(p uint64) uint64 {
	fake.Lock()
	defer fake.Unlock()
	fake.calls++
	return binary.LittleEndian.Uint64(fake.mem[p:])
}

func storeU8(p uint64, v uint32) {
	fake.Lock()
	defer fake.Unlock()
	fake.calls++
	fake.mem[p] = byte(v)
}

func storeU64(p uint64, v uint64) {
	fake.Lock()
	defer fake.Unlock()
	fake.calls++
	binary.LittleEndian.PutUint64(fake.mem[p:], v)
}

func inputLength() uint64 {
	fake.Lock()
	defer fake.Unlock()
	fake.calls++
	return uint64(len(fake.input))
}

func inputLoadU8(off uint64) uint32 {
	fake.Lock()
	defer fake.Unlock()
	fake.calls++
	return uint32(fake.input[off])
}

func inputLoadU64(off uint64) uint64 {
	fake.Lock()
	defer fake.Unlock()
	fake.calls++
	return binary.LittleEndian.Uint64(fake.input[off:])
}

func blockBytes(p, n uint64) []byte {
	if p == 0 {
		return nil
	}
	if l, ok := fake.blocks[p]; !ok || l < n {
		panic(fmt.Sprintf("kernel: block %d does not hold %d bytes", p, n))
	}
	return append([]byte(nil), fake.mem[p:p+n]...)
}

func outputSet(p, n uint64) {
	fake.Lock()
	defer fake.Unlock()
	fake.calls++
	fake.output = blockBytes(p, n)
}

func errorSet(p uint64) {
	fake.Lock()
	defer fake.Unlock()
	fake.calls++
	fake.errMsg = string(blockBytes(p, fake.blocks[p]))
}

func logAt(level string) func(uint64) {
	return func(p uint64) {
		fake.Lock()
		defer fake.Unlock()
		fake.calls++
		fake.logs = append(fake.logs, level+" "+string(blockBytes(p, fake.blocks[p])))
		delete(fake.blocks, p)
	}
}

var (
	logTrace = logAt("trace")
	logDebug = logAt("debug")
	logInfo  = logAt("info")
	logWarn  = logAt("warn")
	logError = logAt("error")
)

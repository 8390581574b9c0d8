package plugin

import (
	"encoding/binary"
	"fmt"
)

// kernel is one instance's Extism kernel, implemented natively: the memory the guest
// addresses with i64 "kernel pointers", the call's input and output, and the error message.
//
// Extism ships its kernel as a WebAssembly module the host calls into for every access;
// go-sdk v1.7.1 creates a wazero call engine per such call (and, with CloseOnContextDone,
// a goroutine). Here every kernel function is a plain Go host function over a byte slice.
// The semantics follow abi/spec/v1.md ("The Extism kernel"):
//
//   - offset 0 is null; alloc(0) and a failed alloc return 0;
//   - blocks are reused first-fit after free; freeing the input block zeroes the input length;
//   - reset (before every call) invalidates every block.
//
// A kernel serves one call at a time (its instance is out of the pool during a call).
type kernel struct {
	mem    []byte            // offsets 0..7 are reserved so that 0 is never a block
	blocks map[uint64]*block // by offset
	free   []uint64          // offsets of freed blocks
	max    int               // arena limit in bytes

	inOff, inLen   uint64
	outOff, outLen uint64
	errOff         uint64
}

type block struct {
	size, used uint64
	active     bool
}

const (
	kernelReserved = 8
	// kernelKeep is the arena capacity kept across calls; a larger arena is released at reset.
	kernelKeep = 1 << 20
)

func newKernel(max int) *kernel {
	return &kernel{mem: make([]byte, kernelReserved, 64<<10), blocks: map[uint64]*block{}, max: max}
}

// reset forgets every block; the host calls it before each export call.
func (k *kernel) reset() {
	if cap(k.mem) > kernelKeep {
		k.mem = make([]byte, kernelReserved, 64<<10)
	}
	k.mem = k.mem[:kernelReserved]
	clear(k.blocks)
	k.free = k.free[:0]
	k.inOff, k.inLen, k.outOff, k.outLen, k.errOff = 0, 0, 0, 0, 0
}

// alloc returns a block of n bytes, or 0 if n is 0 or the arena limit is reached.
func (k *kernel) alloc(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	for i, off := range k.free {
		if b := k.blocks[off]; b.size >= n {
			k.free = append(k.free[:i], k.free[i+1:]...)
			b.used, b.active = n, true
			return off
		}
	}
	off := uint64(len(k.mem)+7) &^ 7 // 8-byte aligned, as guests copy in u64 steps
	end := off + n
	if end > uint64(k.max) || end < off {
		return 0
	}
	if end > uint64(cap(k.mem)) {
		grown := make([]byte, end, max(end, uint64(2*cap(k.mem))))
		copy(grown, k.mem)
		k.mem = grown
	} else {
		k.mem = k.mem[:end]
		clear(k.mem[off:end])
	}
	k.blocks[off] = &block{size: n, used: n, active: true}
	return off
}

func (k *kernel) freeBlock(p uint64) {
	b, ok := k.blocks[p]
	if !ok || !b.active {
		return
	}
	b.active = false
	k.free = append(k.free, p)
	if p == k.inOff {
		k.inLen = 0
	}
}

// length returns the used length of an active block, 0 for anything else.
func (k *kernel) length(p uint64) uint64 {
	if b, ok := k.blocks[p]; ok && b.active {
		return b.used
	}
	return 0
}

// bytes returns n bytes at p, panicking (a trap for the guest) when out of range.
func (k *kernel) bytes(p, n uint64) []byte {
	if p+n > uint64(len(k.mem)) || p+n < p {
		panic(fmt.Errorf("extism kernel: access of %d bytes at offset %d outside memory of %d bytes", n, p, len(k.mem)))
	}
	return k.mem[p : p+n]
}

func (k *kernel) loadU8(p uint64) uint32        { return uint32(k.bytes(p, 1)[0]) }
func (k *kernel) loadU64(p uint64) uint64       { return binary.LittleEndian.Uint64(k.bytes(p, 8)) }
func (k *kernel) storeU8(p uint64, v uint32)    { k.bytes(p, 1)[0] = byte(v) }
func (k *kernel) storeU64(p uint64, v uint64)   { binary.LittleEndian.PutUint64(k.bytes(p, 8), v) }
func (k *kernel) inputLoadU8(off uint64) uint32 { return k.loadU8(k.inputAt(off, 1)) }

func (k *kernel) inputLoadU64(off uint64) uint64 { return k.loadU64(k.inputAt(off, 8)) }

// inputAt bounds-checks a read of n input bytes at off.
func (k *kernel) inputAt(off, n uint64) uint64 {
	if off+n > k.inLen || off+n < off {
		panic(fmt.Errorf("extism kernel: input read of %d bytes at %d past its length %d", n, off, k.inLen))
	}
	return k.inOff + off
}

// block returns a copy of an active block's content, or an error.
func (k *kernel) block(p uint64) ([]byte, bool) {
	b, ok := k.blocks[p]
	if !ok || !b.active {
		return nil, false
	}
	return append([]byte(nil), k.mem[p:p+b.used]...), true
}

// put copies data into a new block; 0 with ok=false when the arena is full.
func (k *kernel) put(data []byte) (uint64, bool) {
	if len(data) == 0 {
		return 0, true
	}
	p := k.alloc(uint64(len(data)))
	if p == 0 {
		return 0, false
	}
	copy(k.mem[p:], data)
	return p, true
}

// setInput stores the call's input.
func (k *kernel) setInput(data []byte) error {
	p, ok := k.put(data)
	if !ok {
		return fmt.Errorf("%w: input of %d bytes does not fit the kernel memory", ErrLimit, len(data))
	}
	k.inOff, k.inLen = p, uint64(len(data))
	return nil
}

// output returns a copy of the output the guest set.
func (k *kernel) output() []byte {
	if k.outLen == 0 {
		return nil
	}
	return append([]byte(nil), k.bytes(k.outOff, k.outLen)...)
}

// errorMessage returns the error message the guest set, if any.
func (k *kernel) errorMessage() string {
	if k.errOff == 0 {
		return ""
	}
	b, _ := k.block(k.errOff)
	return string(b)
}

package plugin

import (
	"bytes"
	"testing"
)

func TestKernelAllocFreeReuse(t *testing.T) {
	t.Parallel()
	k := newKernel(1 << 20)
	if k.alloc(0) != 0 {
		t.Fatal("alloc(0) must be the null block")
	}
	a := k.alloc(10)
	b := k.alloc(3)
	if a == 0 || b == 0 || a%8 != 0 || b%8 != 0 || b < a+10 {
		t.Fatalf("blocks at %d and %d", a, b)
	}
	if k.length(a) != 10 || k.length(b) != 3 || k.length(a+1) != 0 || k.length(0) != 0 {
		t.Fatal("length of blocks")
	}
	k.storeU64(a, 0x0807060504030201)
	k.storeU8(a+8, 9)
	if got, _ := k.block(a); !bytes.Equal(got, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 0}) {
		t.Fatalf("block a = %v", got)
	}
	k.freeBlock(a)
	if k.length(a) != 0 {
		t.Fatal("freed block still has a length")
	}
	if c := k.alloc(7); c != a || k.length(c) != 7 {
		t.Fatalf("alloc after free = %d (len %d), want reuse of %d", c, k.length(c), a)
	}
	k.reset()
	if k.length(b) != 0 || len(k.mem) != kernelReserved {
		t.Fatal("reset kept blocks")
	}
}

func TestKernelInputOutputError(t *testing.T) {
	t.Parallel()
	k := newKernel(1 << 20)
	if err := k.setInput([]byte("hello, kernel")); err != nil {
		t.Fatal(err)
	}
	if k.inLen != 13 || k.inputLoadU8(12) != 'l' || k.inputLoadU64(5) != 0x6c656e72656b202c {
		t.Fatalf("input: len %d", k.inLen)
	}
	mustPanic(t, "input past its length", func() { k.inputLoadU64(6) })
	k.freeBlock(k.inOff)
	if k.inLen != 0 {
		t.Fatal("freeing the input block must zero the input length")
	}
	p, _ := k.put([]byte(`{"ok":1}`))
	k.outOff, k.outLen = p, 8
	e, _ := k.put([]byte(`{"code":"x","message":"y"}`))
	k.errOff = e
	if string(k.output()) != `{"ok":1}` || k.errorMessage() != `{"code":"x","message":"y"}` {
		t.Fatal("output or error")
	}
	mustPanic(t, "load outside memory", func() { k.loadU64(uint64(len(k.mem)) - 4) })
}

func TestKernelLimit(t *testing.T) {
	t.Parallel()
	k := newKernel(4096)
	if k.alloc(4000) == 0 {
		t.Fatal("alloc within the limit failed")
	}
	if k.alloc(200) != 0 {
		t.Fatal("alloc past the limit succeeded")
	}
	if err := k.setInput(make([]byte, 5000)); err == nil {
		t.Fatal("oversized input accepted")
	}
	big := newKernel(8 << 20)
	big.alloc(4 << 20)
	big.reset()
	if cap(big.mem) > kernelKeep {
		t.Fatalf("reset kept an arena of %d bytes", cap(big.mem))
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

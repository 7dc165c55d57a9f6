/* SPDX-License-Identifier: MIT */
/*
 * Small copy_page_range look-alikes for test_callsite.c: the shape call-site
 * discovery (daemon/callsite.c) looks for, and variants that each break one
 * of its rules. Data, never run: assembled into .rodata, read as bytes.
 *
 * Every function: an ftrace nop, a frame, `again:` the child's lock, the
 * parent's lock, the parent's unlock, the rss[] loop (0x170(%rsp,%r12,4)),
 * the child's unlock (the pass end), `cmp $-5, ret` and `addr != end`
 * (0x58(%rsp) against (%rsp) through %rcx) back to `again:`. The stubs the
 * calls go to and a stand-in for mmlist_lock follow the functions.
 *
 * Variants (the macro's second argument, a bit set):
 *   1  MAPLOCK   the pass starts with a map-and-lock call (6.5 on)
 *   2  CLOBBER   the loop test reads %rcx without loading it: the pass-end
 *                call clobbers it
 *   4  COMPUTED  %rcx is computed (lea), not loaded from a slot
 *   8  SLOTWRITE 0x58(%rsp) is written between the pass end and the test
 *  16  SPMOVE    push/pop between the pass end and the test
 *  32  MMLIST    a lock/unlock pair on mmlist_lock inside the pass
 *  64  TWOENDS   a second unlock that also leads to a -EIO test
 * 128  NORSS     no rss[] loop
 * 256  NORET     ret tested against -6, not -EIO
 * 512  RETSLOT   ret in a stack slot loaded into %eax for the test
 * 1024 MOVEUP    a 5-byte move after the parent's unlock: the pass end's
 *                probe moves up to it, over the rss[] loop
 * 2048 ENTER     ... and a branch before the parent's unlock into the loop
 * 4096 ARGWRITE  ... and ret (%ebp) written after the move
 * 8192 OOL       ... and out-of-line code (after the return, no branch to
 *                it: a static branch's) that goes back into the loop
 * 16384 OOLWRITE ... whose code writes ret (%ebp)
 */
	.section .rodata
	.p2align 4

.macro synth name, v
	.globl synth_\name
synth_\name:
	nopl 0x0(%rax,%rax,1)
	push %rbp
	push %rbx
	sub $0x1a8, %rsp
1:	/* again: */
	mov %r13, %rdi
	.if \v & 1
	mov %r14, %rdx
	call synth_maplock_fn
	.else
	call synth_lock
	.endif
	.if \v & 32
	lea synth_mmlist_lock(%rip), %rdi
	call synth_lock
	lea synth_mmlist_lock(%rip), %rdi
	call synth_unlock
	.endif
	mov 0x50(%rsp), %rdi
	call synth_lock
	xor %ebp, %ebp
	.if \v & 512
	movl $0, 0x28(%rsp)
	.endif
	.if \v & 2048
	test %eax, %eax
	jne 2f
	.endif
	mov 0x50(%rsp), %rdi
	call synth_unlock
	.if \v & 1024
	mov 0x10(%rsp), %rax
	.endif
	.if \v & 4096
	xor %ebp, %ebp
	.endif
	xor %r12d, %r12d
	.if !(\v & 128)
2:	mov 0x170(%rsp,%r12,4), %eax
	.if \v & (8192 | 16384)
	xchg %ax, %ax
	.endif
	add $1, %r12
	cmp $4, %r12
	jne 2b
	.endif
	mov %r13, %rdi
	call synth_unlock
	.if \v & 512
	mov 0x28(%rsp), %eax
	cmp $0xfffffffb, %eax
	.elseif \v & 256
	cmp $0xfffffffa, %ebp
	.else
	cmp $0xfffffffb, %ebp
	.endif
	je 3f
	.if \v & 8
	movq $0, 0x58(%rsp)
	.endif
	.if \v & 16
	push %rax
	pop %rax
	.endif
	.if \v & 4
	lea 0x8(%rbx), %rcx
	.elseif !(\v & 2)
	mov (%rsp), %rcx
	.endif
	cmp %rcx, 0x58(%rsp)
	jne 1b
	.if \v & 64
	mov %r13, %rdi
	call synth_unlock
	cmp $0xfffffffb, %ebp
	je 3f
	mov (%rsp), %rcx
	cmp %rcx, 0x58(%rsp)
	jne 1b
	.endif
3:	add $0x1a8, %rsp
	pop %rbx
	pop %rbp
	ret
	int3
	.if \v & (8192 | 16384)
	.if \v & 16384
	xor %ebp, %ebp
	.endif
	add $1, %rbx
	jmp 2b
	.endif
	.globl synth_\name\()_end
synth_\name\()_end:
.endm

	synth base, 0
	synth maplock, 1
	synth clobber, 2
	synth computed, 4
	synth slotwrite, 8
	synth spmove, 16
	synth mmlist, 32
	synth twoends, 64
	synth norss, 128
	synth noret, 256
	synth retslot, 512
	synth moveup, 1024
	synth enter, 1024 | 2048
	synth argwrite, 1024 | 4096
	synth ool, 1024 | 8192
	synth oolwrite, 1024 | 16384

	.p2align 4
	.globl synth_lock
synth_lock:
	ret
	int3
	.p2align 4
	.globl synth_unlock
synth_unlock:
	ret
	int3
	.p2align 4
	.globl synth_maplock_fn
synth_maplock_fn:
	ret
	int3
	.p2align 4
	.globl synth_mmlist_lock
synth_mmlist_lock:
	.quad 0
	.globl synth_text_end
synth_text_end:
	.section .note.GNU-stack, "", @progbits

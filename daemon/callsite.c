/* SPDX-License-Identifier: MIT */
/*
 * Call-site discovery (callsite.h): copy_page_range's code decoded with
 * Capstone, its calls named by address, the pass's two call sites and the
 * locations of addr, end, ret and rss[4] at the pass end found by the rules
 * below. Every rule that does not hold exactly is a refusal with its reason.
 *
 * 1. The whole function decodes, no breakpoint sits inside it (an int3 is
 *    allowed only after a jump or a return: padding), and no direct call or
 *    jump leaves the kernel text (another tool's optimized probe), but the
 *    ftrace call at the entry.
 * 2. Calls are named by their target: the lock functions (both spin-lock
 *    flavours), the map-and-lock functions and __pte_alloc, each also through
 *    its __pfx_ padding (call-depth tracking). A lock or unlock call whose
 *    first argument is mmlist_lock (a `mov $imm`/`lea` into %rdi in its basic
 *    block) is the swap list's, not a PTE lock.
 * 3. The pass end is the one PTE unlock call from which the code runs (over
 *    other calls, unconditional jumps followed, conditional ones not taken)
 *    to a `cmp $-5` (ret against -EIO) before any other lock call; then on to
 *    the loop test, a compare of two non-constant 64-bit operands followed by
 *    a `jne` back above the pass (the `again:` label).
 * 4. The parent's PTE unlock is the unlock call before the pass end; between
 *    the two, exactly one `disp(%rsp,%reg,4)` operand of 4 bytes reads the
 *    pass's rss[] array (add_mm_rss_vec's loop).
 * 5. The pass start is, between `again:` and the parent's unlock, the one
 *    map-and-lock call (followed by one lock call: the parent's), or else the
 *    first of exactly two lock calls (the child's lock, the parent's).
 * 6. Each operand the code reads after the pass end (ret, the loop test's
 *    two) is traced back along the path from the pass-end call: a stack slot
 *    that nothing on the path writes (the stack pointer must not move), a
 *    callee-saved register that nothing on the path writes (the calls on it
 *    clobber the others), or a register loaded from such a slot on the path
 *    (then the slot). Which of the loop test's operands is addr needs no
 *    rule: addr <= end, so the smaller value read is addr.
 * 7. A probe on a call is never jump-optimized. It moves back to the first of
 *    the plain moves before the call that give the kernel 5 bytes (move_back);
 *    where there are none (6.1's pass end: the rss[] loop's branch right
 *    before `mov %r13,%rdi; call`), it moves up to the latest instruction P
 *    from which every path runs to the call, never back to P, out of the
 *    function or through a lock call, with nothing on the way writing an
 *    arg's register or slot, and which nothing enters but at P (code no
 *    branch reaches, a static branch's out-of-line part, is allowed to come
 *    back in if its own block keeps the args); P must start 5 bytes of plain
 *    instructions no jump lands in (move_up). The probe then fires once per
 *    pass, earlier on the same path, with the same values.
 */
#include "callsite.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>

#include "raw_decode.h"

#define MAX_PATH 64	    /* instructions followed from the pass end to the loop test */
#define MAX_RDI_LOOKBACK 16 /* instructions searched back for %rdi's value */
#define EIO_NEG (-5)

static const char *const sym_names[PD_CS_NR_SYMS] = {
    [PD_CS_RAW_LOCK] = "_raw_spin_lock",
    [PD_CS_RAW_UNLOCK] = "_raw_spin_unlock",
    [PD_CS_RT_LOCK] = "rt_spin_lock",
    [PD_CS_RT_UNLOCK] = "rt_spin_unlock",
    [PD_CS_MAPLOCK_OLD] = "__pte_offset_map_lock",
    [PD_CS_MAPLOCK] = "pte_offset_map_lock",
    [PD_CS_SRCMAP_OLD] = "pte_offset_map_nolock",
    [PD_CS_SRCMAP] = "pte_offset_map_rw_nolock",
    [PD_CS_PTE_ALLOC] = "__pte_alloc",
    [PD_CS_MMLIST_LOCK] = "mmlist_lock",
    [PD_CS_TEXT_START] = "_stext",
    [PD_CS_TEXT_END] = "_etext",
};

const char *pd_cs_sym_name(enum pd_cs_sym s)
{
	return s < PD_CS_NR_SYMS ? sym_names[s] : NULL;
}

enum role { R_OTHER, R_LOCK, R_UNLOCK, R_MAPLOCK, R_SRCMAP, R_PTE_ALLOC };

enum kind { K_OTHER, K_CALL, K_JMP, K_JCC, K_STOP /* ret, int3, ud2, indirect jump */ };

struct ins {
	enum kind kind;
	enum role role; /* calls */
	bool mmlist;	/* a lock/unlock call on mmlist_lock */
	bool direct;	/* call/jmp/jcc with an immediate target */
	uint64_t target;
};

struct dis {
	const struct pd_cs_input *in;
	csh h;
	cs_insn *insn;
	struct ins *x;
	size_t n;
	bool *is_target; /* per instruction: some direct jump lands on it */
};

struct loc {
	bool reg;
	x86_reg r;    /* full 64-bit register */
	int64_t disp; /* stack slot: disp(%rsp) */
	int size;     /* bytes the code reads */
};

/* ------------------------------------------------------------ registers */

static const struct {
	x86_reg full;
	const char *name; /* as kprobe fetch args write it */
	bool callee_saved;
	x86_reg sub[4];
} gprs[] = {
    {X86_REG_RAX, "ax", false, {X86_REG_EAX, X86_REG_AX, X86_REG_AL, X86_REG_AH}},
    {X86_REG_RBX, "bx", true, {X86_REG_EBX, X86_REG_BX, X86_REG_BL, X86_REG_BH}},
    {X86_REG_RCX, "cx", false, {X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH}},
    {X86_REG_RDX, "dx", false, {X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH}},
    {X86_REG_RSI, "si", false, {X86_REG_ESI, X86_REG_SI, X86_REG_SIL}},
    {X86_REG_RDI, "di", false, {X86_REG_EDI, X86_REG_DI, X86_REG_DIL}},
    {X86_REG_RBP, "bp", true, {X86_REG_EBP, X86_REG_BP, X86_REG_BPL}},
    {X86_REG_RSP, "sp", true, {X86_REG_ESP, X86_REG_SP, X86_REG_SPL}},
    {X86_REG_R8, "r8", false, {X86_REG_R8D, X86_REG_R8W, X86_REG_R8B}},
    {X86_REG_R9, "r9", false, {X86_REG_R9D, X86_REG_R9W, X86_REG_R9B}},
    {X86_REG_R10, "r10", false, {X86_REG_R10D, X86_REG_R10W, X86_REG_R10B}},
    {X86_REG_R11, "r11", false, {X86_REG_R11D, X86_REG_R11W, X86_REG_R11B}},
    {X86_REG_R12, "r12", true, {X86_REG_R12D, X86_REG_R12W, X86_REG_R12B}},
    {X86_REG_R13, "r13", true, {X86_REG_R13D, X86_REG_R13W, X86_REG_R13B}},
    {X86_REG_R14, "r14", true, {X86_REG_R14D, X86_REG_R14W, X86_REG_R14B}},
    {X86_REG_R15, "r15", true, {X86_REG_R15D, X86_REG_R15W, X86_REG_R15B}},
};

/* The general-purpose register @r is part of, as an index into gprs; -1. */
static int gpr_of(x86_reg r)
{
	for (size_t i = 0; i < sizeof(gprs) / sizeof(gprs[0]); i++) {
		if (gprs[i].full == r)
			return (int)i;
		for (int k = 0; k < 4; k++)
			if (gprs[i].sub[k] && gprs[i].sub[k] == r)
				return (int)i;
	}
	return -1;
}

/* Whether instruction @i writes (any part of) register @full. */
static bool writes_reg(const struct dis *d, size_t i, x86_reg full)
{
	cs_regs rd, wr;
	uint8_t nrd = 0, nwr = 0;

	if (cs_regs_access(d->h, &d->insn[i], rd, &nrd, wr, &nwr))
		return true; /* cannot tell: assume the worst */
	for (int k = 0; k < nwr; k++) {
		int g = gpr_of((x86_reg)wr[k]);

		if (g >= 0 && gprs[g].full == full)
			return true;
	}
	return false;
}

/* ------------------------------------------------------------- decoding */

static const cs_x86 *x86(const struct dis *d, size_t i)
{
	return &d->insn[i].detail->x86;
}

static uint32_t off_of(const struct dis *d, size_t i)
{
	return (uint32_t)(d->insn[i].address - d->in->addr);
}

static long find_ins(const struct dis *d, uint64_t addr)
{
	size_t lo = 0, hi = d->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (d->insn[mid].address < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->n && d->insn[lo].address == addr ? (long)lo : -1;
}

static bool sym_at(const struct pd_cs_input *in, enum pd_cs_sym s, uint64_t target)
{
	return (in->sym[s] && target == in->sym[s]) || (in->pfx[s] && target == in->pfx[s]);
}

static enum role role_of(const struct pd_cs_input *in, uint64_t target)
{
	if (sym_at(in, PD_CS_RAW_LOCK, target) || sym_at(in, PD_CS_RT_LOCK, target))
		return R_LOCK;
	if (sym_at(in, PD_CS_RAW_UNLOCK, target) || sym_at(in, PD_CS_RT_UNLOCK, target))
		return R_UNLOCK;
	if (sym_at(in, PD_CS_MAPLOCK_OLD, target) || sym_at(in, PD_CS_MAPLOCK, target))
		return R_MAPLOCK;
	if (sym_at(in, PD_CS_SRCMAP_OLD, target) || sym_at(in, PD_CS_SRCMAP, target))
		return R_SRCMAP;
	if (sym_at(in, PD_CS_PTE_ALLOC, target))
		return R_PTE_ALLOC;
	return R_OTHER;
}

static void classify(struct dis *d, size_t i)
{
	const cs_insn *c = &d->insn[i];
	const cs_x86 *x = x86(d, i);
	struct ins *s = &d->x[i];
	bool imm = x->op_count >= 1 && x->operands[0].type == X86_OP_IMM;

	*s = (struct ins){.kind = K_OTHER};
	if (c->id == X86_INS_CALL) {
		s->kind = K_CALL;
		s->direct = imm && c->size == 5 && c->bytes[0] == 0xe8;
		if (s->direct) {
			s->target = (uint64_t)x->operands[0].imm;
			s->role = role_of(d->in, s->target);
		}
	} else if (c->id == X86_INS_JMP) {
		s->kind = imm ? K_JMP : K_STOP;
		s->direct = imm;
		s->target = imm ? (uint64_t)x->operands[0].imm : 0;
	} else if (cs_insn_group(d->h, c, CS_GRP_JUMP)) {
		s->kind = imm ? K_JCC : K_STOP;
		s->direct = imm;
		s->target = imm ? (uint64_t)x->operands[0].imm : 0;
	} else if (cs_insn_group(d->h, c, CS_GRP_RET) || c->id == X86_INS_INT3 ||
		   c->id == X86_INS_UD2 || cs_insn_group(d->h, c, CS_GRP_IRET)) {
		s->kind = K_STOP;
	}
}

/* The value %rdi is given before call @i in its basic block (a `mov $imm` or a
 * RIP-relative `lea`), 0 when it cannot be told. */
static uint64_t rdi_before(const struct dis *d, size_t i)
{
	for (size_t k = i, steps = 0; k-- > 0 && steps < MAX_RDI_LOOKBACK; steps++) {
		const cs_x86 *x = x86(d, k);

		if (d->x[k].kind != K_OTHER)
			return 0; /* another block */
		if (writes_reg(d, k, X86_REG_RDI)) {
			const cs_x86_op *o = &x->operands[1];

			if (x->op_count != 2)
				return 0;
			if (d->insn[k].id == X86_INS_MOV && o->type == X86_OP_IMM)
				return (uint64_t)o->imm;
			if (d->insn[k].id == X86_INS_LEA && o->type == X86_OP_MEM &&
			    o->mem.base == X86_REG_RIP && o->mem.index == X86_REG_INVALID)
				return d->insn[k].address + d->insn[k].size + (uint64_t)o->mem.disp;
			return 0;
		}
		if (d->is_target[k])
			return 0; /* its value may come from elsewhere */
	}
	return 0;
}

/* An int3 where the compiler puts none (only after a jump or a return, as
 * padding): somebody's breakpoint. -ENOTSUP with its place, else 0. */
static int check_breakpoints(const struct dis *d, char *why, size_t len)
{
	for (size_t i = 1; i < d->n; i++)
		if (d->insn[i].id == X86_INS_INT3 &&
		    !(d->x[i - 1].kind == K_STOP || d->x[i - 1].kind == K_JMP)) {
			snprintf(why, len,
				 "a breakpoint (int3) inside copy_page_range at +%#x: another "
				 "probe or debugger is there",
				 off_of(d, i));
			return -ENOTSUP;
		}
	return 0;
}

/* Rule 1 but breakpoints: no direct call or jump leaves the kernel text (but
 * the ftrace call), none lands inside an instruction. */
static int check_targets(const struct dis *d, char *why, size_t len)
{
	const struct pd_cs_input *in = d->in;
	uint64_t lo = in->sym[PD_CS_TEXT_START], hi = in->sym[PD_CS_TEXT_END];

	if (!lo || !hi || lo >= hi) {
		snprintf(why, len, "kallsyms has no _stext/_etext");
		return -ENOTSUP;
	}
	for (size_t i = 0; i < d->n; i++) {
		const struct ins *s = &d->x[i];
		uint32_t off = off_of(d, i);

		if (!s->direct || (s->target >= in->addr && s->target < in->addr + in->size)) {
			if (s->direct && find_ins(d, s->target) < 0) {
				snprintf(why, len, "a jump at +%#x lands inside an instruction",
					 off);
				return -ENOTSUP;
			}
			continue;
		}
		/* the first call is the ftrace site: a trampoline when traced */
		if (s->kind == K_CALL && off <= 4 && i <= 1)
			continue;
		if (s->target < lo || s->target >= hi) {
			snprintf(why, len,
				 "a %s at +%#x leaves the kernel text (another tool's probe?)",
				 s->kind == K_CALL ? "call" : "jump", off);
			return -ENOTSUP;
		}
	}
	return 0;
}

/* Decodes and classifies the code, and checks rule 1. */
static int decode(struct dis *d, char *why, size_t len)
{
	const struct pd_cs_input *in = d->in;
	size_t end = 0;
	int ret;

	if (cs_open(CS_ARCH_X86, CS_MODE_64, &d->h) != CS_ERR_OK) {
		snprintf(why, len, "the disassembler cannot start");
		return -ENOMEM;
	}
	cs_option(d->h, CS_OPT_DETAIL, CS_OPT_ON);
	d->n = cs_disasm(d->h, in->text, in->size, in->addr, 0, &d->insn);
	if (d->n)
		end = (size_t)(d->insn[d->n - 1].address + d->insn[d->n - 1].size - in->addr);
	d->x = calloc(d->n + 1, sizeof(*d->x));
	d->is_target = calloc(d->n + 1, sizeof(*d->is_target));
	if (!d->x || !d->is_target)
		return -ENOMEM;
	for (size_t i = 0; i < d->n; i++)
		classify(d, i);
	/* a breakpoint is the likely reason the rest does not decode */
	if ((ret = check_breakpoints(d, why, len)))
		return ret;
	if (end != in->size) {
		snprintf(why, len, "copy_page_range does not decode past +%#zx of %#zx bytes", end,
			 in->size);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < d->n; i++) {
		long t =
		    d->x[i].direct && d->x[i].kind != K_CALL ? find_ins(d, d->x[i].target) : -1;

		if (t >= 0)
			d->is_target[t] = true;
	}
	for (size_t i = 0; i < d->n; i++)
		if (d->x[i].kind == K_CALL && (d->x[i].role == R_LOCK || d->x[i].role == R_UNLOCK))
			d->x[i].mmlist = in->sym[PD_CS_MMLIST_LOCK] &&
					 rdi_before(d, i) == in->sym[PD_CS_MMLIST_LOCK];
	return check_targets(d, why, len);
}

/* A PTE lock or unlock call (not the swap list's). */
static bool pte_call(const struct dis *d, size_t i, enum role role)
{
	return d->x[i].kind == K_CALL && d->x[i].role == role && !d->x[i].mmlist;
}

static bool any_lock_call(const struct dis *d, size_t i)
{
	enum role r = d->x[i].role;

	return d->x[i].kind == K_CALL && (r == R_LOCK || r == R_UNLOCK || r == R_MAPLOCK);
}

/* ---------------------------------------------------------------- paths */

struct path {
	size_t idx[MAX_PATH];
	int n;
};

/* The instruction after @i on the path, or -1 where it ends (a stop, a jump
 * outside the function, the end of the code). */
static long next_on_path(const struct dis *d, size_t i)
{
	const struct ins *s = &d->x[i];

	if (s->kind == K_STOP)
		return -1;
	if (s->kind == K_JMP)
		return find_ins(d, s->target);
	return i + 1 < d->n ? (long)(i + 1) : -1;
}

static bool is_ret_test(const struct dis *d, size_t i, cs_x86_op *val)
{
	const cs_x86 *x = x86(d, i);
	const cs_x86_op *a = &x->operands[0], *b = &x->operands[1];

	if (d->insn[i].id != X86_INS_CMP || x->op_count != 2 || b->type != X86_OP_IMM ||
	    a->type == X86_OP_IMM)
		return false;
	if (!(a->size == 4 ? (int32_t)b->imm == EIO_NEG : b->imm == EIO_NEG))
		return false;
	*val = *a;
	return true;
}

/* Walks from pass-end candidate @u (a call) to its ret test; the path, the
 * test's operand. false when the code goes elsewhere first. */
static bool walk_to_ret_test(const struct dis *d, size_t u, struct path *p, cs_x86_op *val)
{
	long i = (long)u;

	p->n = 0;
	while (i >= 0 && p->n < MAX_PATH) {
		if (p->n && any_lock_call(d, (size_t)i))
			return false;
		if (p->n && is_ret_test(d, (size_t)i, val))
			return true;
		p->idx[p->n++] = (size_t)i;
		i = next_on_path(d, (size_t)i);
	}
	return false;
}

/* From the ret test on (the path continues in @p), the loop test: its two
 * operands and the `again:` address it jumps back to. */
static bool walk_to_loop_test(const struct dis *d, struct path *p, cs_x86_op ops[2],
			      uint64_t *again)
{
	long i = (long)p->idx[p->n - 1];

	/* p's last entry is the instruction before the ret test: start at the test */
	i = next_on_path(d, (size_t)i);
	while (i >= 0 && p->n < MAX_PATH - 1) {
		const cs_x86 *x = x86(d, (size_t)i);

		if (d->x[i].kind == K_CALL)
			return false;
		if (d->insn[i].id == X86_INS_CMP && x->op_count == 2 &&
		    x->operands[0].type != X86_OP_IMM && x->operands[1].type != X86_OP_IMM &&
		    x->operands[0].size == 8 && x->operands[1].size == 8 && (size_t)i + 1 < d->n &&
		    d->insn[i + 1].id == X86_INS_JNE && d->x[i + 1].direct &&
		    d->x[i + 1].target < d->insn[p->idx[0]].address) {
			ops[0] = x->operands[0];
			ops[1] = x->operands[1];
			*again = d->x[i + 1].target;
			p->idx[p->n++] = (size_t)i;
			return true;
		}
		p->idx[p->n++] = (size_t)i;
		i = next_on_path(d, (size_t)i);
	}
	return false;
}

/* ------------------------------------------------------------ operands */

static bool moves_sp(const struct dis *d, size_t i)
{
	return d->x[i].kind != K_CALL && writes_reg(d, i, X86_REG_RSP);
}

/* Whether instruction @i writes memory overlapping disp(%rsp) of @size bytes. */
static bool writes_slot(const struct dis *d, size_t i, int64_t disp, int size)
{
	const cs_x86 *x = x86(d, i);

	for (int k = 0; k < x->op_count; k++) {
		const cs_x86_op *o = &x->operands[k];

		if (o->type != X86_OP_MEM || !(o->access & CS_AC_WRITE) ||
		    o->mem.base != X86_REG_RSP)
			continue;
		if (o->mem.index != X86_REG_INVALID)
			return true; /* somewhere in the frame */
		if (o->mem.disp < disp + size && disp < o->mem.disp + o->size)
			return true;
	}
	return false;
}

/* Rule 6 for a stack slot read at path position @upto. */
static int slot_at_probe(const struct dis *d, const struct path *p, int upto, int64_t disp,
			 int size, struct loc *out, char *why, size_t len)
{
	for (int k = 0; k < upto; k++) {
		if (moves_sp(d, p->idx[k])) {
			snprintf(why, len, "the stack pointer moves at +%#x after the pass end",
				 off_of(d, p->idx[k]));
			return -ENOTSUP;
		}
		if (writes_slot(d, p->idx[k], disp, size)) {
			snprintf(why, len,
				 "%+" PRId64 "(%%rsp) is written at +%#x after the pass end", disp,
				 off_of(d, p->idx[k]));
			return -ENOTSUP;
		}
	}
	*out = (struct loc){.reg = false, .disp = disp, .size = size};
	return 0;
}

/* Rule 6: where operand @op, read at path position @upto, is at the probe. */
static int at_probe(const struct dis *d, const struct path *p, int upto, const cs_x86_op *op,
		    struct loc *out, char *why, size_t len)
{
	int g;

	if (op->type == X86_OP_MEM) {
		if (op->mem.base != X86_REG_RSP || op->mem.index != X86_REG_INVALID ||
		    op->mem.segment != X86_REG_INVALID) {
			snprintf(why, len, "an operand after the pass end is not a stack slot");
			return -ENOTSUP;
		}
		return slot_at_probe(d, p, upto, op->mem.disp, op->size, out, why, len);
	}
	if (op->type != X86_OP_REG || (g = gpr_of(op->reg)) < 0 || gprs[g].full == X86_REG_RSP) {
		snprintf(why, len, "an operand after the pass end is not a register or a slot");
		return -ENOTSUP;
	}
	for (int k = upto - 1; k >= 1; k--) {
		size_t i = p->idx[k];
		const cs_x86 *x = x86(d, i);

		if (!writes_reg(d, i, gprs[g].full))
			continue;
		/* loaded from a slot on the path: that slot is the value */
		if (d->insn[i].id == X86_INS_MOV && x->op_count == 2 &&
		    x->operands[0].type == X86_OP_REG && gpr_of(x->operands[0].reg) == g &&
		    x->operands[1].type == X86_OP_MEM && x->operands[1].size == op->size &&
		    x->operands[1].mem.base == X86_REG_RSP &&
		    x->operands[1].mem.index == X86_REG_INVALID &&
		    x->operands[1].mem.segment == X86_REG_INVALID)
			return slot_at_probe(d, p, k, x->operands[1].mem.disp, op->size, out, why,
					     len);
		snprintf(why, len, "%%%s is computed at +%#x after the pass end", gprs[g].name,
			 off_of(d, i));
		return -ENOTSUP;
	}
	/* kept from before the probe: only a callee-saved register survives the
	 * pass-end call itself */
	if (!gprs[g].callee_saved) {
		snprintf(why, len, "%%%s is read after the pass-end call, which clobbers it",
			 gprs[g].name);
		return -ENOTSUP;
	}
	*out = (struct loc){.reg = true, .r = gprs[g].full, .size = op->size};
	return 0;
}

static void loc_str(const struct loc *l, char *buf, size_t len)
{
	if (l->reg)
		snprintf(buf, len, "%%%s", gprs[gpr_of(l->r)].name);
	else if (l->disp < 0)
		snprintf(buf, len, "-%#" PRIx64 "(%%sp)", (uint64_t)-l->disp);
	else
		snprintf(buf, len, "+%#" PRIx64 "(%%sp)", (uint64_t)l->disp);
}

/* ---------------------------------------------------------------- roles */

/* Rule 3: the pass end, its path to the loop test, and the test's operands. */
static int find_pass_end(const struct dis *d, size_t *u, struct path *p, cs_x86_op *ret,
			 int *ret_at, cs_x86_op cmp[2], uint64_t *again, char *why, size_t len)
{
	long end = -1; /* the one unlock call found so far */

	for (size_t i = 0; i < d->n; i++) {
		struct path q;
		cs_x86_op v;

		if (!pte_call(d, i, R_UNLOCK) || !walk_to_ret_test(d, i, &q, &v))
			continue;
		if (end >= 0) {
			snprintf(why, len,
				 "two pass ends: unlock calls at +%#x and +%#x both lead "
				 "to the -EIO test",
				 off_of(d, (size_t)end), off_of(d, i));
			return -ENOTSUP;
		}
		end = (long)i;
		*p = q;
		*ret = v;
	}
	if (end < 0) {
		snprintf(why, len, "no PTE unlock call leads to a -EIO test (the pass end)");
		return -ENOTSUP;
	}
	*u = (size_t)end;
	*ret_at = p->n;
	if (!walk_to_loop_test(d, p, cmp, again)) {
		snprintf(why, len, "no `addr != end` loop test after the pass end at +%#x",
			 off_of(d, *u));
		return -ENOTSUP;
	}
	return 0;
}

/* Rule 4: the parent's unlock before the pass end, and rss[] between them. */
static int find_rss(const struct dis *d, size_t u, size_t *s, int64_t *rss, char *why, size_t len)
{
	long src = -1;
	int found = 0;

	for (size_t i = u; i-- > 0;) {
		if (pte_call(d, i, R_UNLOCK)) {
			src = (long)i;
			break;
		}
		if (any_lock_call(d, i))
			break;
	}
	if (src < 0) {
		snprintf(why, len, "no parent PTE unlock right before the pass end at +%#x",
			 off_of(d, u));
		return -ENOTSUP;
	}
	*s = (size_t)src;
	for (size_t i = (size_t)src + 1; i < u; i++) {
		const cs_x86 *x = x86(d, i);

		for (int k = 0; k < x->op_count; k++) {
			const cs_x86_op *o = &x->operands[k];

			if (o->type != X86_OP_MEM || o->mem.base != X86_REG_RSP ||
			    o->mem.index == X86_REG_INVALID || o->mem.scale != 4)
				continue;
			if (o->size != 4 || (found && o->mem.disp != *rss)) {
				snprintf(why, len,
					 "more than one rss[] candidate between +%#x and "
					 "+%#x",
					 off_of(d, (size_t)src), off_of(d, u));
				return -ENOTSUP;
			}
			*rss = o->mem.disp;
			found = 1;
		}
	}
	for (size_t i = (size_t)src + 1; found && i < u; i++)
		if (writes_slot(d, i, *rss, 16) || moves_sp(d, i)) {
			snprintf(why, len, "rss[] is written at +%#x", off_of(d, i));
			return -ENOTSUP;
		}
	if (!found) {
		snprintf(why, len, "no rss[] loop between the PTE unlocks at +%#x and +%#x",
			 off_of(d, (size_t)src), off_of(d, u));
		return -ENOTSUP;
	}
	return 0;
}

/* Rule 5: the pass start between `again:` and the parent's unlock. */
static int find_pass_start(const struct dis *d, size_t again, size_t s, struct pd_cs_plan *out,
			   char *why, size_t len)
{
	size_t maplock[2], lock[3];
	int nm = 0, nl = 0;

	for (size_t i = again; i < s; i++) {
		if (pte_call(d, i, R_MAPLOCK) && nm < 2)
			maplock[nm++] = i;
		else if (pte_call(d, i, R_LOCK) && nl < 3)
			lock[nl++] = i;
		else if (pte_call(d, i, R_UNLOCK)) {
			snprintf(why, len, "a PTE unlock at +%#x inside the pass", off_of(d, i));
			return -ENOTSUP;
		}
	}
	if (nm == 1 && nl == 1 && maplock[0] < lock[0]) {
		out->shape = PD_CS_SHAPE_MAPLOCK;
		out->start_off = off_of(d, maplock[0]);
		return 0;
	}
	if (nm == 0 && nl == 2) {
		out->shape = PD_CS_SHAPE_LOCK2;
		out->start_off = off_of(d, lock[0]);
		return 0;
	}
	snprintf(why, len,
		 "the pass between +%#x and +%#x has %d map-and-lock and %d lock calls (known: 1 "
		 "and 1, or 0 and 2)",
		 off_of(d, again), off_of(d, s), nm, nl);
	return -ENOTSUP;
}

static const x86_reg arg_gprs[] = {X86_REG_RDI, X86_REG_RSI, X86_REG_RDX,
				   X86_REG_RCX, X86_REG_R8,  X86_REG_R9};

/* One fetch arg of a probe: its name, where the value is, its type. */
struct fetch {
	const char *name;
	struct loc loc;
	const char *type; /* "x64", "s32", "x64[2]" (rss[4]: two reads, not four) */
};

#define MAX_FETCH 6

struct probe_args {
	struct fetch f[MAX_FETCH];
	int n;
};

static void fetch_add(struct probe_args *a, const char *name, struct loc loc, const char *type)
{
	a->f[a->n++] = (struct fetch){.name = name, .loc = loc, .type = type};
}

static struct loc reg_loc(x86_reg r)
{
	return (struct loc){.reg = true, .r = r, .size = 8};
}

static int args_str(const struct probe_args *a, char *out, size_t len)
{
	size_t n = 0;

	out[0] = 0;
	for (int i = 0; i < a->n; i++) {
		char l[32];
		int k;

		loc_str(&a->f[i].loc, l, sizeof(l));
		k = snprintf(out + n, len - n, "%s%s=%s:%s", i ? " " : "", a->f[i].name, l,
			     a->f[i].type);
		if (k < 0 || (size_t)k >= len - n)
			return -E2BIG;
		n += (size_t)k;
	}
	return 0;
}

/* Whether instruction @i may lie between a moved probe and its call: a plain
 * move or address computation into a register, no branch, no store but to
 * the stack, no change of the stack pointer. */
static bool movable(const struct dis *d, size_t i)
{
	const cs_x86 *x = x86(d, i);

	if (d->x[i].kind != K_OTHER ||
	    (d->insn[i].id != X86_INS_MOV && d->insn[i].id != X86_INS_LEA) || moves_sp(d, i) ||
	    x->op_count != 2)
		return false;
	for (int k = 0; k < x->op_count; k++) {
		const cs_x86_op *o = &x->operands[k];

		if (o->type == X86_OP_MEM && (o->access & CS_AC_WRITE) &&
		    (o->mem.base != X86_REG_RSP || o->mem.index != X86_REG_INVALID))
			return false;
	}
	return true;
}

/* Rewrites @a, valid at call @c, to where the same values are at @p: every
 * register the straight-line instructions [p, c) load is replaced by its
 * source (a full 64-bit move from a register or a stack slot). false when an
 * instruction there writes an arg's place otherwise. */
static bool rewrite_back(const struct dis *d, size_t p, size_t c, struct probe_args *a)
{
	struct probe_args moved = *a;

	for (int i = 0; i < moved.n; i++) {
		struct loc *l = &moved.f[i].loc;

		for (size_t k = c; k-- > p;) {
			const cs_x86 *x = x86(d, k);
			const cs_x86_op *src = &x->operands[1];

			if (!l->reg) {
				if (writes_slot(d, k, l->disp, l->size))
					return false;
				continue;
			}
			if (!writes_reg(d, k, l->r))
				continue;
			/* a full 64-bit move into the register: its source at P */
			if (d->insn[k].id != X86_INS_MOV || x->operands[0].size != 8 ||
			    gpr_of(x->operands[0].reg) < 0 ||
			    gprs[gpr_of(x->operands[0].reg)].full != l->r)
				return false;
			if (src->type == X86_OP_REG && gpr_of(src->reg) >= 0 &&
			    gprs[gpr_of(src->reg)].full != X86_REG_RSP && src->size == 8)
				*l = reg_loc(gprs[gpr_of(src->reg)].full);
			else if (src->type == X86_OP_MEM && src->mem.base == X86_REG_RSP &&
				 src->mem.index == X86_REG_INVALID &&
				 src->mem.segment == X86_REG_INVALID && src->size == 8)
				*l = (struct loc){.reg = false, .disp = src->mem.disp, .size = 8};
			else
				return false;
		}
	}
	*a = moved;
	return true;
}

/*
 * A probe cannot be jump-optimized on a call (the kernel's can_boost() refuses
 * it), only where the 5 bytes of its jump cover no call: so the probe moves to
 * the instruction P at least 5 bytes before call @c, when nothing between
 * them branches, is branched to, or stores where a fetch arg reads, and every
 * register arg those instructions load is rewritten to where they load it
 * from. The moved probe fires on the same path (nothing can enter between P
 * and the call) with the same values. Returns P's index, or @c when it cannot
 * move (the probe then stays on the call: int3, as the kernel handles it).
 */
static size_t move_back(const struct dis *d, size_t c, struct probe_args *a)
{
	size_t p = c;

	if (d->is_target[c])
		return c;
	while (p > 0 && d->insn[c].address - d->insn[p].address < 5) {
		p--;
		/* nothing may enter between the probe and the call */
		if (!movable(d, p) || (p + 1 < c && d->is_target[p + 1]))
			return c;
	}
	if (d->insn[c].address - d->insn[p].address < 5)
		return c;
	return rewrite_back(d, p, c, a) ? p : c;
}

/* ------------------------------------------------- moving a probe up */

#define MAX_REGION 256 /* instructions between a probe moved up and its call */

/* The instructions control may go to after @i (up to two); -1 for a jump out
 * of the function or one that cannot be followed. */
static int succs(const struct dis *d, size_t i, long out[2])
{
	const struct ins *s = &d->x[i];
	int n = 0;

	if (s->kind == K_STOP)
		return 0;
	if (s->kind == K_JMP || s->kind == K_JCC)
		out[n++] = s->direct ? find_ins(d, s->target) : -1;
	if (s->kind != K_JMP)
		out[n++] = i + 1 < d->n ? (long)(i + 1) : -1;
	return n;
}

/* An instruction every kernel's kprobe optimizer copies (can_boost): a move,
 * lea, or ALU/test on registers and the stack, no prefix but REX, no branch. */
static bool plain(const struct dis *d, size_t i)
{
	const cs_x86 *x = x86(d, i);
	uint8_t op = x->opcode[0];

	if (d->x[i].kind != K_OTHER || x->prefix[0] || x->prefix[1] || x->prefix[2] || x->prefix[3])
		return false;
	if (!(op == 0x89 || op == 0x8b || op == 0x8d || op == 0xc7 || op == 0x81 || op == 0x83 ||
	      op == 0x84 || op == 0x85 || (op >= 0xb8 && op <= 0xbf) ||
	      (op <= 0x3b && (op & 7) <= 3)))
		return false;
	for (int k = 0; k < x->op_count; k++) {
		const cs_x86_op *o = &x->operands[k];

		if (o->type != X86_OP_MEM || d->insn[i].id == X86_INS_LEA)
			continue;
		if (o->mem.base != X86_REG_RSP || o->mem.index != X86_REG_INVALID ||
		    o->mem.segment != X86_REG_INVALID)
			return false;
	}
	return true;
}

/* Whether the kernel can put its 5-byte jump at @p: whole plain instructions
 * from it cover 5 bytes, and no jump lands inside them. */
static bool jump_fits(const struct dis *d, size_t p)
{
	for (size_t k = p; k < d->n; k++) {
		if (!plain(d, k) || (k > p && d->is_target[k]))
			return false;
		if (d->insn[k].address + d->insn[k].size - d->insn[p].address >= 5)
			return true;
	}
	return false;
}

/* Whether instruction @i may run between a probe and its call without
 * changing what its args @a read: no branch out, lock call, move of the stack
 * pointer or write of an arg's place; a call only where every register arg
 * survives it. */
static bool keeps_args(const struct dis *d, size_t i, const struct probe_args *a)
{
	if (d->x[i].kind == K_STOP || any_lock_call(d, i) || moves_sp(d, i) ||
	    (d->x[i].kind == K_CALL && !d->x[i].direct))
		return false;
	for (int k = 0; k < a->n; k++) {
		const struct loc *l = &a->f[k].loc;

		if (l->reg ? (writes_reg(d, i, l->r) ||
			      (d->x[i].kind == K_CALL && !gprs[gpr_of(l->r)].callee_saved))
			   : writes_slot(d, i, l->disp, l->size))
			return false;
	}
	return true;
}

/*
 * The region from @p to @b: every instruction control reaches from @p before
 * @b, which must be reached, never @p again (the probe fires once per pass)
 * and never out of the function; each keeps the args. Nothing enters it but
 * at @p: every other predecessor of its instructions is inside, except code
 * that no branch reaches from the function's entry (the out-of-line part of a
 * static branch, patched in at run time), whose own block must keep the args
 * too. @in and @reach are scratch and the reachable set.
 */
static bool region_ok(const struct dis *d, size_t p, size_t b, const struct probe_args *a, bool *in,
		      const bool *reach)
{
	size_t stack[MAX_REGION], top = 0, count = 0;

	memset(in, 0, d->n * sizeof(*in));
	in[p] = true;
	stack[top++] = p;
	while (top) {
		size_t i = stack[--top];
		long t[2];
		int n;

		if (i == b)
			continue;
		if (!keeps_args(d, i, a))
			return false;
		n = succs(d, i, t);
		for (int k = 0; k < n; k++) {
			if (t[k] < 0 || (size_t)t[k] == p)
				return false;
			if (in[t[k]])
				continue;
			if (++count >= MAX_REGION)
				return false;
			in[t[k]] = true;
			stack[top++] = (size_t)t[k];
		}
	}
	if (!in[b])
		return false;
	for (size_t j = 0; j < d->n; j++) {
		long t[2];
		int n;

		if (in[j])
			continue;
		n = succs(d, j, t);
		for (int k = 0; k < n; k++) {
			if (t[k] < 0 || !in[t[k]] || (size_t)t[k] == p)
				continue;
			if (reach[j])
				return false;
			/* out-of-line code: its block, back to where it begins */
			for (size_t q = j;; q--) {
				if (!keeps_args(d, q, a))
					return false;
				if (q == 0 || d->is_target[q] || d->x[q - 1].kind == K_JMP ||
				    d->x[q - 1].kind == K_STOP)
					break;
			}
		}
	}
	return true;
}

/*
 * Where move_back cannot place a probe (no 5 bytes of plain moves right
 * before call @c), the latest instruction P after @lo from which every path
 * runs to the call once, with the args' values unchanged (region_ok), and
 * where the kernel can put its jump (jump_fits). The probe fires earlier on
 * the same path, once per call. The args are rewritten over the straight run
 * of moves before the call (rewrite_back). Returns P, or @c.
 */
static size_t move_up(const struct dis *d, size_t c, size_t lo, struct probe_args *a)
{
	struct probe_args at_b = *a;
	size_t b = c, p = c;
	bool *in, *reach;
	size_t *stack;
	size_t top = 0;

	while (b > lo + 1 && !d->is_target[b] && movable(d, b - 1))
		b--;
	if (!rewrite_back(d, b, c, &at_b))
		return c;
	in = calloc(d->n, sizeof(*in));
	reach = calloc(d->n, sizeof(*reach));
	stack = calloc(d->n, sizeof(*stack));
	if (!in || !reach || !stack)
		goto out;
	/* what direct branches reach from the entry */
	reach[0] = true;
	stack[top++] = 0;
	while (top) {
		size_t i = stack[--top];
		long t[2];
		int n = succs(d, i, t);

		for (int k = 0; k < n; k++)
			if (t[k] >= 0 && !reach[t[k]]) {
				reach[t[k]] = true;
				stack[top++] = (size_t)t[k];
			}
	}
	for (size_t x = b; x-- > lo + 1;)
		if (reach[x] && jump_fits(d, x) && region_ok(d, x, b, &at_b, in, reach)) {
			*a = at_b;
			p = x;
			break;
		}
out:
	free(in);
	free(reach);
	free(stack);
	return p;
}

static int plan_args(const struct dis *d, size_t again, size_t start, size_t src, size_t end,
		     const struct path *p, int ret_at, const cs_x86_op *ret, const cs_x86_op cmp[2],
		     int64_t rss, struct pd_cs_plan *out, char *why, size_t len)
{
	struct probe_args sa = {0}, ea = {0};
	struct loc r, a, b;
	int ret_code, arg = d->in->maplock_addr_arg;
	size_t ps, pe;

	if ((ret_code = at_probe(d, p, ret_at, ret, &r, why, len)) ||
	    (ret_code = at_probe(d, p, p->n - 1, &cmp[0], &a, why, len)) ||
	    (ret_code = at_probe(d, p, p->n - 1, &cmp[1], &b, why, len)))
		return ret_code;
	if (r.size != 4 && r.size != 8) {
		snprintf(why, len, "ret is %d bytes", r.size);
		return -ENOTSUP;
	}
	/* the lock pointer pairs a start with its end where the start has it */
	if (out->shape == PD_CS_SHAPE_LOCK2) {
		fetch_add(&sa, PT_RAW_PASS_PTL, reg_loc(X86_REG_RDI), "x64");
		fetch_add(&ea, PT_RAW_PASS_PTL, reg_loc(X86_REG_RDI), "x64");
	} else if (arg >= 1 && arg <= 6) {
		fetch_add(&sa, PT_RAW_PASS_ADDR, reg_loc(arg_gprs[arg - 1]), "x64");
	}
	fetch_add(&ea, PT_RAW_PASS_A, a, "x64");
	fetch_add(&ea, PT_RAW_PASS_B, b, "x64");
	fetch_add(&ea, PT_RAW_PASS_RET, r, r.size == 4 ? "s32" : "s64");
	fetch_add(&ea, PT_RAW_PASS_RSS, (struct loc){.reg = false, .disp = rss, .size = 16},
		  "x64[2]");
	if ((ret_code = args_str(&sa, out->call_start_args, sizeof(out->call_start_args))) ||
	    (ret_code = args_str(&ea, out->call_end_args, sizeof(out->call_end_args))))
		return ret_code;
	if ((ps = move_back(d, start, &sa)) == start)
		ps = move_up(d, start, again, &sa);
	if ((pe = move_back(d, end, &ea)) == end)
		pe = move_up(d, end, src, &ea);
	out->start_off = off_of(d, ps);
	out->end_off = off_of(d, pe);
	if ((ret_code = args_str(&sa, out->start_args, sizeof(out->start_args))) ||
	    (ret_code = args_str(&ea, out->end_args, sizeof(out->end_args))))
		return ret_code;
	return 0;
}

static int discover(struct dis *d, struct pd_cs_plan *out, char *why, size_t len)
{
	struct path p;
	cs_x86_op ret, cmp[2];
	uint64_t again;
	size_t u, s;
	int64_t rss = 0;
	long a;
	int ret_at, err;

	if ((err = decode(d, why, len)) ||
	    (err = find_pass_end(d, &u, &p, &ret, &ret_at, cmp, &again, why, len)) ||
	    (err = find_rss(d, u, &s, &rss, why, len)))
		return err;
	if ((a = find_ins(d, again)) < 0) {
		snprintf(why, len, "the loop test jumps inside an instruction");
		return -ENOTSUP;
	}
	if ((err = find_pass_start(d, (size_t)a, s, out, why, len)))
		return err;
	out->call_start_off = out->start_off;
	out->end_off = out->call_end_off = off_of(d, u);
	out->src_unlock_off = off_of(d, s);
	out->again_off = (uint32_t)(again - d->in->addr);
	/* the ret test follows the path's last instruction before it */
	a = next_on_path(d, p.idx[ret_at - 1]);
	out->ret_test_off = a >= 0 ? off_of(d, (size_t)a) : 0;
	out->loop_test_off = off_of(d, p.idx[p.n - 1]);
	return plan_args(d, (size_t)find_ins(d, again) - 1,
			 (size_t)find_ins(d, d->in->addr + out->call_start_off), s, u, &p, ret_at,
			 &ret, cmp, rss, out, why, len);
}

int pd_cs_discover(const struct pd_cs_input *in, struct pd_cs_plan *out, char *why, size_t len)
{
	struct dis d = {.in = in};
	int ret;

	memset(out, 0, sizeof(*out));
	if (!in->text || !in->size || in->size > PD_CS_MAX_TEXT || !in->addr) {
		snprintf(why, len, "copy_page_range's code is %zu bytes", in ? in->size : 0);
		return -EINVAL;
	}
	ret = discover(&d, out, why, len);
	if (d.insn)
		cs_free(d.insn, d.n);
	if (d.h)
		cs_close(&d.h);
	free(d.x);
	free(d.is_target);
	return ret;
}

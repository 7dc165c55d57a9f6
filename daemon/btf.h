/* SPDX-License-Identifier: MIT */
/*
 * A small reader of the kernel's BTF (the raw blob /sys/kernel/btf/vmlinux):
 * byte offsets and sizes of struct members by name, and the position of a
 * function's parameter by name. Fed by the running kernel's blob; feeds the
 * kprobe definitions of the default capture, which fetch a few fields of the
 * forking task (their offsets differ per kernel build).
 *
 * The blob is untrusted input: the header and the bounds of every type
 * record are checked once at load, where the types are indexed by id; every
 * later read (names, type ids, chains of typedefs) is checked again, and
 * chains and nesting are walked at most PD_BTF_MAX_DEPTH deep. Only
 * little-endian base BTF (not a module's split BTF) is read.
 *
 * Sized for vmlinux: ~5 MB, ~100k types, held in memory while loaded. A
 * lookup by name scans the types once (a few ms); callers ask a handful of
 * questions at start and free the reader.
 */
#ifndef PTESCOPED_BTF_H
#define PTESCOPED_BTF_H

#include <stddef.h>
#include <stdint.h>

/* Longest typedef/modifier chain, array nesting or anonymous member nesting followed. */
#define PD_BTF_MAX_DEPTH 32
/* Largest blob pd_btf_load() reads (vmlinux is ~5 MB). */
#define PD_BTF_MAX_BYTES (256u << 20)

struct pd_btf;

/*
 * Reads the whole file @path (at most PD_BTF_MAX_BYTES) and checks it: the
 * header, the sections' bounds, every type record's bounds and kind (a kind
 * this reader does not know is refused: its record size is unknown). Returns
 * 0 and the reader in @out (free with pd_btf_free()); -errno when the file
 * cannot be read, -EINVAL when the blob is malformed, -EFBIG when too large;
 * message in @err.
 */
int pd_btf_load(const char *path, struct pd_btf **out, char *err, size_t errlen);
/* The same over @len bytes at @data, which are copied (the caller keeps them). */
int pd_btf_load_mem(const void *data, size_t len, struct pd_btf **out, char *err, size_t errlen);
/* Accepts NULL. */
void pd_btf_free(struct pd_btf *b);

/*
 * Byte offset and byte size of the member @path ("sched_info.run_delay",
 * components separated by dots) inside the struct or union named @type.
 * Members of anonymous structs/unions nested at any depth count as direct
 * members. Each component but the last must be a struct/union (through
 * typedef/const/volatile/restrict/type_tag). The type is the first STRUCT or
 * UNION of that name (a FWD never counts). The size is the member's type's
 * after those modifiers: a pointer's is the blob's pointer size (that of
 * `long` when the blob has it), an array's its element's times its length.
 * Returns 0; -ENOENT when the type or a member is missing; -EINVAL for a
 * bitfield, an offset not byte-aligned, a path through a pointer or array,
 * a typedef cycle or a malformed record; message in @err.
 */
int pd_btf_member(const struct pd_btf *b, const char *type, const char *path, uint32_t *off,
		  uint32_t *size, char *err, size_t errlen);

/*
 * Position (from 1) in @index of the parameter named @param of the function
 * @func (the first BTF FUNC of that name, and its FUNC_PROTO). Returns 0;
 * -ENOENT when the function or the parameter is missing; -EINVAL when the
 * function's record is malformed; message in @err.
 */
int pd_btf_param(const struct pd_btf *b, const char *func, const char *param, int *index, char *err,
		 size_t errlen);

/* How many types the blob has (the highest type id). */
uint32_t pd_btf_count(const struct pd_btf *b);

#endif

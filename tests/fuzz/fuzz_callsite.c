/* SPDX-License-Identifier: MIT */
/*
 * Call-site discovery (daemon/callsite.c) on any bytes as copy_page_range's
 * code, with the symbol addresses of Debian's 6.1.192 kernel as read in the VM
 * (tests/fixtures/callsite/bookworm/syms): it must refuse or plan, never read
 * out of bounds or loop. Seed: that kernel's live code.
 */
#include <stddef.h>
#include <stdint.h>

#include "callsite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pd_cs_input in = {.text = data, .size = size, .addr = 0xffffffffb74d0750ull,
				 .maplock_addr_arg = 3};
	struct pd_cs_plan p;
	char why[256];

	in.sym[PD_CS_RAW_LOCK] = 0xffffffffb7c5a000ull;
	in.sym[PD_CS_RAW_UNLOCK] = 0xffffffffb7c5a090ull;
	in.sym[PD_CS_PTE_ALLOC] = 0xffffffffb74ca9b0ull;
	in.sym[PD_CS_MMLIST_LOCK] = 0xffffffffb8c06040ull;
	in.sym[PD_CS_TEXT_START] = 0xffffffffb7200000ull;
	in.sym[PD_CS_TEXT_END] = 0xffffffffb8001d32ull;
	pd_cs_discover(&in, &p, why, sizeof(why));
	return 0;
}

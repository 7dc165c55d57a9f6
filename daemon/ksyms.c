/* SPDX-License-Identifier: MIT */
/*
 * Addresses of the hooked functions from kallsyms (ksyms.h).
 */
#include "ksyms.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sym {
	uint64_t addr;
	int name; /* index into names */
};

struct pd_ksyms {
	const char *const *names;
	struct sym sym[PD_KSYMS_MAX];
	int nr;
};

int pd_ksyms_load(const char *path, const char *const *names, int nr, struct pd_ksyms **out,
		  char *err, size_t errlen)
{
	struct pd_ksyms *k = calloc(1, sizeof(*k));
	char *line = NULL;
	size_t cap = 0;
	bool zeros = false;
	FILE *f;

	if (!k)
		return -ENOMEM;
	if (!(f = fopen(path, "re"))) {
		int ret = -errno;

		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		free(k);
		return ret;
	}
	k->names = names;
	while (getline(&line, &cap, f) > 0) {
		char type, name[256];
		unsigned long long addr;

		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3)
			continue;
		for (int i = 0; i < nr; i++) {
			if (strcmp(name, names[i]))
				continue;
			if (!addr)
				zeros = true;
			else if (k->nr < PD_KSYMS_MAX)
				k->sym[k->nr++] = (struct sym){addr, i};
			break;
		}
	}
	free(line);
	fclose(f);
	if (zeros && !k->nr) {
		snprintf(err, errlen, "%s shows no addresses (needs CAP_SYSLOG, or "
				      "kernel.kptr_restrict=0 with perf_event_paranoid<=1)", path);
		free(k);
		return -EPERM;
	}
	*out = k;
	return 0;
}

void pd_ksyms_free(struct pd_ksyms *k)
{
	free(k);
}

const char *pd_ksyms_name(const struct pd_ksyms *k, uint64_t addr, uint64_t *id)
{
	for (int i = 0; k && i < k->nr; i++) {
		if (addr >= k->sym[i].addr && addr < k->sym[i].addr + 16) {
			*id = (uint64_t)k->sym[i].name + 1;
			return k->names[k->sym[i].name];
		}
	}
	*id = 0;
	return NULL;
}

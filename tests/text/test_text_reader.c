/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the function_graph text reader: literal snippets, one per
 * option combination and edge case the kernel and trace-cmd print (most
 * copied from real traces), each checked against the exact events it must
 * produce, rendered one per line by text_collect.h. Plus the reader's
 * bounds: long lines through a pipe, progress, errors, consumer stops.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reader.h"
#include "text_collect.h"
#include "check.h"

struct text_case {
	const char *name;
	const char *in;
	size_t in_len; /* 0: strlen(in) */
	const char *want;
	int want_ret;
	uint64_t want_unparsed;
};

/* A literal that may hold NUL bytes. */
#define LIT(s) .in = (s), .in_len = sizeof(s) - 1

/* One literal line per trace line: keep clang-format out of this table. */
/* clang-format off */
static const struct text_case cases[] = {
	{
		.name = "default options, real excerpt",
		.in = "# tracer: function_graph\n"
		      "#\n"
		      "# CPU  DURATION                  FUNCTION CALLS\n"
		      "# |     |   |                     |   |   |   |\n"
		      " 1) + 26.540 us   |  copy_page_range();\n"
		      " 1)               |  copy_page_range() {\n"
		      " 1)   0.911 us    |    __cond_resched();\n"
		      " 1)               |    __pud_alloc() {\n"
		      " 1)   0.801 us    |      policy_nodemask();\n"
		      " 1) + 30.255 us   |    }\n"
		      " 0) ! 214.831 us  |    } /* vm_normal_page */\n"
		      " 0) * 31484.93 us |  } /* copy_page_range */\n",
		.want = "LEAF cpu=1 pid=-1 comm=- depth=0 ts=- dur=26540 func=copy_page_range\n"
			"ENTRY cpu=1 pid=-1 comm=- depth=0 ts=- func=copy_page_range\n"
			"LEAF cpu=1 pid=-1 comm=- depth=1 ts=- dur=911 func=__cond_resched\n"
			"ENTRY cpu=1 pid=-1 comm=- depth=1 ts=- func=__pud_alloc\n"
			"LEAF cpu=1 pid=-1 comm=- depth=2 ts=- dur=801 func=policy_nodemask\n"
			"EXIT cpu=1 pid=-1 comm=- depth=1 ts=- dur=30255 func=-\n"
			"EXIT cpu=0 pid=-1 comm=- depth=1 ts=- dur=214831 func=vm_normal_page\n"
			"EXIT cpu=0 pid=-1 comm=- depth=0 ts=- dur=31484930 func=copy_page_range\n",
	},
	{
		.name = "wide CPU numbers",
		.in = "   5)   0.911 us    |  f();\n"
		      " 123) + 12.000 us   |    g();\n"
		      "1023)               |  h() {\n",
		.want = "LEAF cpu=5 pid=-1 comm=- depth=0 ts=- dur=911 func=f\n"
			"LEAF cpu=123 pid=-1 comm=- depth=1 ts=- dur=12000 func=g\n"
			"ENTRY cpu=1023 pid=-1 comm=- depth=0 ts=- func=h\n",
	},
	{
		.name = "funcgraph-proc, comms with dashes and spaces",
		.in = " 1)   forker-96    |   0.911 us    |    __cond_resched();\n"
		      " 0)  trace-c-93    |               |  f() {\n"
		      " 0)  my pr-g-1234  |   2.000 us    |  }\n"
		      " 0)   <...>-7      |   1.000 us    |  x();\n",
		.want = "LEAF cpu=1 pid=96 comm=forker depth=1 ts=- dur=911 func=__cond_resched\n"
			"ENTRY cpu=0 pid=93 comm=trace-c depth=0 ts=- func=f\n"
			"EXIT cpu=0 pid=1234 comm=my pr-g depth=0 ts=- dur=2000 func=-\n"
			"LEAF cpu=0 pid=7 comm=<...> depth=0 ts=- dur=1000 func=x\n",
	},
	{
		.name = "funcgraph-abstime, exit carries its own time",
		.in = "#     TIME        CPU  TASK/PID         DURATION                  FUNCTION CALLS\n"
		      "    5.849871 |   1)   forker-96    |               |  copy_page_range() {\n"
		      "    5.849872 |   1)   forker-96    |   0.911 us    |    f();\n"
		      "   12.000001 |   1)   forker-96    | + 10.100 us   |  }\n",
		.want = "ENTRY cpu=1 pid=96 comm=forker depth=0 ts=5849871000 func=copy_page_range\n"
			"LEAF cpu=1 pid=96 comm=forker depth=1 ts=5849872000 dur=911 func=f\n"
			"EXIT cpu=1 pid=96 comm=forker depth=0 ts=12000001000 dur=10100 func=-\n",
	},
	{
		.name = "funcgraph-reltime, and abstime without the CPU column",
		.in = "     1234 us |   1)   forker-96    |   0.911 us    |    f();\n"
		      "       12 us |   0)               |  g() {\n"
		      "    5.849871 |   0.911 us    |  h();\n"
		      "    5.849872 |  i();\n",
		.want = "LEAF cpu=1 pid=96 comm=forker depth=1 ts=1234000 dur=911 func=f\n"
			"ENTRY cpu=0 pid=-1 comm=- depth=0 ts=12000 func=g\n"
			"LEAF cpu=-1 pid=-1 comm=- depth=0 ts=5849871000 dur=911 func=h\n"
			"LEAF cpu=-1 pid=-1 comm=- depth=0 ts=5849872000 dur=- func=i\n",
	},
	{
		.name = "latency format column",
		.in = " 1)   forker-96    |  d..1. |   0.911 us    |    f();\n"
		      " 1)   forker-96    |  ....  |               |  g() {\n"
		      " 0)  d.h2. |   1.000 us    |  h();\n",
		.want = "LEAF cpu=1 pid=96 comm=forker depth=1 ts=- dur=911 func=f\n"
			"ENTRY cpu=1 pid=96 comm=forker depth=0 ts=- func=g\n"
			"LEAF cpu=0 pid=-1 comm=- depth=0 ts=- dur=1000 func=h\n",
	},
	{
		.name = "overhead marks and long durations",
		.in = " 0) ! 107.621 us  |  a();\n"
		      " 0) # 1234.567 us  |  b();\n"
		      " 0) @ 123456.7 us  |  c();\n"
		      " 0) $ 1234567 us   |  d();\n"
		      " 0) $ 98765432 us  |  e();\n"
		      " 0)   0.000 us    |  f();\n"
		      " 0)   999.99 us   |  g();\n",
		.want = "LEAF cpu=0 pid=-1 comm=- depth=0 ts=- dur=107621 func=a\n"
			"LEAF cpu=0 pid=-1 comm=- depth=0 ts=- dur=1234567 func=b\n"
			"LEAF cpu=0 pid=-1 comm=- depth=0 ts=- dur=123456700 func=c\n"
			"LEAF cpu=0 pid=-1 comm=- depth=0 ts=- dur=1234567000 func=d\n"
			"LEAF cpu=0 pid=-1 comm=- depth=0 ts=- dur=98765432000 func=e\n"
			"LEAF cpu=0 pid=-1 comm=- depth=0 ts=- dur=0 func=f\n"
			"LEAF cpu=0 pid=-1 comm=- depth=0 ts=- dur=999990 func=g\n",
	},
	{
		.name = "funcgraph-duration off",
		.in = " 1) f() {\n"
		      " 1)   g();\n"
		      " 1) }\n"
		      " 1)   forker-96    | h() {\n"
		      " 1)   forker-96    |   i();\n",
		.want = "ENTRY cpu=1 pid=-1 comm=- depth=0 ts=- func=f\n"
			"LEAF cpu=1 pid=-1 comm=- depth=1 ts=- dur=- func=g\n"
			"EXIT cpu=1 pid=-1 comm=- depth=0 ts=- dur=- func=-\n"
			"ENTRY cpu=1 pid=96 comm=forker depth=0 ts=- func=h\n"
			"LEAF cpu=1 pid=96 comm=forker depth=1 ts=- dur=- func=i\n",
	},
	{
		.name = "context-info off: indentation only",
		.in = "f() {\n"
		      "  g();\n"
		      "}\n",
		.want = "ENTRY cpu=-1 pid=-1 comm=- depth=0 ts=- func=f\n"
			"LEAF cpu=-1 pid=-1 comm=- depth=1 ts=- dur=- func=g\n"
			"EXIT cpu=-1 pid=-1 comm=- depth=0 ts=- dur=- func=-\n",
	},
	{
		.name = "irq markers, per CPU",
		.in = " 0)   ==========> |\n"
		      " 0)               |  __sysvec_apic_timer_interrupt() {\n"
		      " 1)   0.500 us    |  other();\n"
		      " 0)   1.000 us    |    f();\n"
		      " 0)   5.000 us    |  }\n"
		      " 0)   <========== |\n"
		      " 0)   0.500 us    |  g();\n",
		.want = "ENTRY cpu=0 pid=-1 comm=- depth=0 ts=- func=__sysvec_apic_timer_interrupt irq\n"
			"LEAF cpu=1 pid=-1 comm=- depth=0 ts=- dur=500 func=other\n"
			"LEAF cpu=0 pid=-1 comm=- depth=1 ts=- dur=1000 func=f irq\n"
			"EXIT cpu=0 pid=-1 comm=- depth=0 ts=- dur=5000 func=- irq\n"
			"LEAF cpu=0 pid=-1 comm=- depth=0 ts=- dur=500 func=g\n",
	},
	{
		.name = "task-switch block sets pid and comm on its CPU",
		.in = " 1)   0.911 us    |  before();\n"
		      " ------------------------------------------\n"
		      " 1)   bash-1234    =>   forker-96   \n"
		      " ------------------------------------------\n"
		      "\n"
		      " 1)   0.911 us    |  f();\n"
		      " 0)   0.911 us    |  g();\n"
		      " ------------------------------------------\n"
		      " 0)  forker-96    =>  my-pr g-7 \n"
		      " ------------------------------------------\n"
		      " 0)   0.911 us    |  h();\n",
		.want = "LEAF cpu=1 pid=-1 comm=- depth=0 ts=- dur=911 func=before\n"
			"LEAF cpu=1 pid=96 comm=forker depth=0 ts=- dur=911 func=f\n"
			"LEAF cpu=0 pid=-1 comm=- depth=0 ts=- dur=911 func=g\n"
			"LEAF cpu=0 pid=7 comm=my-pr g depth=0 ts=- dur=911 func=h\n",
	},
	{
		.name = "event comments: fork event, other events, trace_printk",
		.in = " 1)               |  /* sched_process_fork: comm=forker pid=96 child_comm=forker "
		      "child_pid=97 */\n"
		      "    7.498696 |   1)   forker-96    |               |  /* sched_process_fork: "
		      "comm=my prog pid=96 child_comm=my prog child_pid=98 */\n"
		      " 1)               |  /* sched_switch: prev_comm=a prev_pid=1 */\n"
		      " 1)               |    /* hello: 1.5: world */\n",
		.want = "FORK cpu=1 pid=96 comm=forker ts=- child=97/forker\n"
			"FORK cpu=1 pid=96 comm=my prog ts=7498696000 child=98/my prog\n",
	},
	{
		.name = "truncated fork comments (fuzzer finding)",
		.in =
		    "# tracer: function_graph\n"
		    " 1)               |  /* sched_process_fork: \n"
		    " 1)               |  /* sched_process_fork: */\n"
		    " 1)               |  /* sched_process_fork: comm=a pid=\n"
		    " 1)               |  /* sched_process_fork: comm=a pid=1 child_comm=b child_pid= */\n",
		.want = "",
	},
	{
		.name = "funcgraph-retval and retaddr comments",
		.in = " 1)   0.911 us    |  f(); /* = 0x0 */\n"
		      " 1)   0.911 us    |  f(); /* ret=-12 */\n"
		      " 1)               |  g() { /* <-caller+0x12/0x40 */\n"
		      " 1)   1.000 us    |  } /* g = 0xfffffff4 */\n"
		      " 1)   1.000 us    |  } /* g ret=0x0 */\n",
		.want = "LEAF cpu=1 pid=-1 comm=- depth=0 ts=- dur=911 func=f\n"
			"LEAF cpu=1 pid=-1 comm=- depth=0 ts=- dur=911 func=f\n"
			"ENTRY cpu=1 pid=-1 comm=- depth=0 ts=- func=g\n"
			"EXIT cpu=1 pid=-1 comm=- depth=0 ts=- dur=1000 func=g\n"
			"EXIT cpu=1 pid=-1 comm=- depth=0 ts=- dur=1000 func=g\n",
	},
	{
		.name = "tracing_thresh: exits only",
		.in = " 1) ! 200.123 us  |    } /* copy_page_range */\n"
		      " 1) ! 300.000 us  |  } /* dup_mmap */\n",
		.want = "EXIT cpu=1 pid=-1 comm=- depth=1 ts=- dur=200123 func=copy_page_range\n"
			"EXIT cpu=1 pid=-1 comm=- depth=0 ts=- dur=300000 func=dup_mmap\n",
	},
	{
		.name = "module suffix and symbol suffixes",
		.in = " 1)               |  g [kvm]() {\n"
		      " 1)   0.911 us    |    f [kvm_intel]();\n"
		      " 1)   1.000 us    |  } /* g [kvm] */\n"
		      " 1)   1.000 us    |  finish_task_switch.isra.0();\n",
		.want = "ENTRY cpu=1 pid=-1 comm=- depth=0 ts=- func=g\n"
			"LEAF cpu=1 pid=-1 comm=- depth=1 ts=- dur=911 func=f\n"
			"EXIT cpu=1 pid=-1 comm=- depth=0 ts=- dur=1000 func=g\n"
			"LEAF cpu=1 pid=-1 comm=- depth=0 ts=- dur=1000 func=finish_task_switch.isra.0\n",
	},
	{
		.name = "lost events, kernel and trace-cmd wording",
		.in = " 1)   0.911 us    |  f();\n"
		      "CPU:1 [LOST 123 EVENTS]\n"
		      "CPU:0 [45 EVENTS DROPPED]\n"
		      "CPU:2 [EVENTS DROPPED]\n",
		.want = "LEAF cpu=1 pid=-1 comm=- depth=0 ts=- dur=911 func=f\n"
			"LOST cpu=1 pid=-1 comm=- ts=- lost=123\n"
			"LOST cpu=0 pid=-1 comm=- ts=- lost=45\n"
			"LOST cpu=2 pid=-1 comm=- ts=- lost=0\n",
	},
	{
		.name = "CRLF and a missing final newline",
		.in = " 1)   0.911 us    |  f();\r\n\r\n 1)   1.000 us    |  g();",
		.want = "LEAF cpu=1 pid=-1 comm=- depth=0 ts=- dur=911 func=f\n"
			"LEAF cpu=1 pid=-1 comm=- depth=0 ts=- dur=1000 func=g\n",
	},
	{
		.name = "NUL bytes and invalid UTF-8 inside lines",
		LIT(" 1)   0.911 us    |  f\0oo();\n 1)   0.9\0 us    |  g();\n\xff\xfe\x80 1)  \n"
		    " 1)   0.911 us    |  h();\n"),
		.want = "LEAF cpu=1 pid=-1 comm=- depth=0 ts=- dur=911 func=h\n",
		.want_unparsed = 3,
	},
	{
		.name = "huge numbers are range-checked",
		.in = " 99999999999999999999)   0.911 us    |  f();\n"
		      " 8192)   0.911 us    |  f();\n"
		      " 1) 99999999999999999999.000 us |  f();\n"
		      " 1) 18446744073709551.615 us |  f();\n"
		      "99999999999999999999.000000 |   1)   0.911 us    |  f();\n"
		      " 1)   0.911 us    |  ok();\n",
		.want = "LEAF cpu=1 pid=-1 comm=- depth=0 ts=- dur=911 func=ok\n",
		.want_unparsed = 5,
	},
	{
		.name = "trace-cmd report, real excerpt",
		.in = "cpus=2\n"
		      "          forker-96    [001]     5.849871: funcgraph_entry:                   |  "
		      "mutex_unlock() {\n"
		      "          forker-96    [001]     5.849956: funcgraph_entry:      + 43.986 us  |    "
		      "irq_enter_rcu();\n"
		      "          forker-96    [001]     5.849956: funcgraph_entry:        0.901 us   |     "
		      "   _raw_spin_lock_irqsave();\n"
		      "          forker-96    [001]     5.849956: funcgraph_exit:         6.199 us   |     "
		      "   }\n"
		      "          forker-96    [001]     7.498696: sched_process_fork:   comm=forker pid=96 "
		      "child_comm=forker child_pid=97\n"
		      "       trace-cmd-95    [000]     7.410484: funcgraph_exit:         1.842 us   |    "
		      "} /* _raw_spin_unlock */\n"
		      "          forker-96    [001]     7.500000: sched_switch:         prev_comm=forker "
		      "prev_pid=96\n",
		.want = "ENTRY cpu=1 pid=96 comm=forker depth=0 ts=5849871000 func=mutex_unlock\n"
			"LEAF cpu=1 pid=96 comm=forker depth=1 ts=5849956000 dur=43986 func=irq_enter_rcu\n"
			"LEAF cpu=1 pid=96 comm=forker depth=3 ts=5849956000 dur=901 "
			"func=_raw_spin_lock_irqsave\n"
			"EXIT cpu=1 pid=96 comm=forker depth=3 ts=5849956000 dur=6199 func=-\n"
			"FORK cpu=1 pid=96 comm=forker ts=7498696000 child=97/forker\n"
			"EXIT cpu=0 pid=95 comm=trace-cmd depth=1 ts=7410484000 dur=1842 "
			"func=_raw_spin_unlock\n",
	},
	{
		.name = "trace-cmd report -l and -t, flags column, colon in comm",
		.in =
		    "  forker-96      1...1.     5.849871: funcgraph_entry:                   |  "
		    "mutex_unlock() {\n"
		    "  forker-96      1d..2.     5.849956: funcgraph_entry:      + 43.986 us  |    "
		    "irq_enter_rcu();\n"
		    "          forker-96    [001]     5.849871481: funcgraph_entry:        0.901 us   |  "
		    "f();\n"
		    "          forker-96    [001] d..1.  5.849871: funcgraph_exit:         6.199 us   |  "
		    "}\n"
		    "   kworker/0:1-12    [010]   100.000001: funcgraph_entry:        0.500 us   |  g();\n"
		    "  my prog-5    [000]     1.5: funcgraph_entry:        0.500 us   |  h();\n",
		.want = "ENTRY cpu=1 pid=96 comm=forker depth=0 ts=5849871000 func=mutex_unlock\n"
			"LEAF cpu=1 pid=96 comm=forker depth=1 ts=5849956000 dur=43986 func=irq_enter_rcu\n"
			"LEAF cpu=1 pid=96 comm=forker depth=0 ts=5849871481 dur=901 func=f\n"
			"EXIT cpu=1 pid=96 comm=forker depth=0 ts=5849871000 dur=6199 func=-\n"
			"LEAF cpu=10 pid=12 comm=kworker/0:1 depth=0 ts=100000001000 dur=500 func=g\n"
			"LEAF cpu=0 pid=5 comm=my prog depth=0 ts=1500000000 dur=500 func=h\n",
	},
	{
		.name = "trace-cmd report without the graph plugin (raw formats)",
		.in = "  forker-96  [001]  5.000001: funcgraph_entry:      --> copy_page_range (2)\n"
		      "  forker-96  [001]  5.000002: funcgraph_exit:       <-- copy_page_range (2) (start: "
		      "12a  end: 13b) over: 2\n",
		.want = "ENTRY cpu=1 pid=96 comm=forker depth=2 ts=5000001000 func=copy_page_range\n"
			"EXIT cpu=1 pid=96 comm=forker depth=2 ts=5000002000 dur=- func=copy_page_range\n",
	},
	{
		.name = "trace-cmd report -R (raw fields), real excerpt",
		.in = "cpus=2\n"
		      "              sh-389   [000]    18.328427: funcgraph_entry:       "
		      "func=kernel_clone depth=0\n"
		      "              sh-389   [000]    18.328459: funcgraph_exit:        "
		      "func=__cond_resched depth=2 overrun=0 calltime=44d4f776e rettime=44d4f7fc3\n"
		      "          forker-96    [001]     7.498696: sched_process_fork:    "
		      "parent_comm=forker parent_pid=96 child_comm=for ker child_pid=97\n"
		      "          forker-96    [001]     7.500000: funcgraph_exit:        "
		      "func=0xffffffff8107c6b0 calltime=0x10 rettime=0x30 overrun=0x3 depth=1\n"
		      "          forker-96    [001]     7.500001: funcgraph_entry:       "
		      "func=0xffffffff8107c6b0 depth=1\n"
		      "          forker-96    [001]     7.500002: funcgraph_exit:        "
		      "func=copy_page_range+0x0/0x1f0 depth=1 overrun=0\n",
		.want = "ENTRY cpu=0 pid=389 comm=sh depth=0 ts=18328427000 func=kernel_clone\n"
			"EXIT cpu=0 pid=389 comm=sh depth=2 ts=18476924867 dur=2133 "
			"call=18476922734 rec=18328459000 overrun=0 func=__cond_resched\n"
			"FORK cpu=1 pid=96 comm=forker ts=7498696000 child=97/for ker\n"
			"EXIT cpu=1 pid=96 comm=forker depth=1 ts=48 dur=32 call=16 rec=7500000000 "
			"overrun=3 func=0xffffffff8107c6b0\n"
			"ENTRY cpu=1 pid=96 comm=forker depth=1 ts=7500001000 func=0xffffffff8107c6b0\n"
			"EXIT cpu=1 pid=96 comm=forker depth=1 ts=7500002000 dur=- "
			"rec=7500002000 overrun=0 func=copy_page_range\n",
	},
	{
		.name = "trace-cmd report -l and -R -l: the irq context from the flags",
		.in = "      sh-389     0d.h3.    18.318981: funcgraph_entry:      + 56.104 us  |    "
		      "_raw_spin_lock();\n"
		      "      sh-389     0d..3.    18.319140: funcgraph_entry:        1.863 us   |    "
		      "_raw_spin_unlock();\n"
		      "      sh-389    [000] d.s2.   18.319140: funcgraph_entry:        1.000 us   |  "
		      "f();\n"
		      "      sh-389     0-0x9    18.318980804: funcgraph_entry:       "
		      "func=_raw_spin_lock depth=1\n"
		      "      sh-389     1-0x1    18.318980805: funcgraph_entry:       "
		      "func=_raw_spin_lock depth=1\n",
		.want = "LEAF cpu=0 pid=389 comm=sh depth=1 ts=18318981000 dur=56104 "
			"func=_raw_spin_lock irq\n"
			"LEAF cpu=0 pid=389 comm=sh depth=1 ts=18319140000 dur=1863 "
			"func=_raw_spin_unlock\n"
			"LEAF cpu=0 pid=389 comm=sh depth=0 ts=18319140000 dur=1000 func=f irq\n"
			"ENTRY cpu=0 pid=389 comm=sh depth=1 ts=18318980804 func=_raw_spin_lock irq\n"
			"ENTRY cpu=1 pid=389 comm=sh depth=1 ts=18318980805 func=_raw_spin_lock\n",
	},
	{
		.name = "header only is a (empty) function_graph trace",
		.in = "# tracer: function_graph\n#\n",
		.want = "",
	},
	{
		.name = "binary junk is not a trace",
		LIT("\x7f"
		    "ELF\x02\x01\x01\0\0\0\0\n\xde\xad\xbe\xef\n"),
		.want = "",
		.want_ret = -EINVAL,
		.want_unparsed = 2,
	},
	{
		.name = "empty input is not a trace",
		.in = "",
		.want = "",
		.want_ret = -EINVAL,
	},
	{
		.name = "another tracer's text is not a function_graph trace",
		.in = "# tracer: function\n"
		      "            bash-1234  [001] ....  5.123456: do_sys_open <-do_syscall_64\n",
		.want = "",
		.want_ret = -EINVAL,
		.want_unparsed = 1,
	},
	{
		.name = "odd but harmless lines",
		.in = " 1)   0.911 us    |  f();\n"
		      " (Overruns: 0)\n"
		      "CPU 0 is empty\n"
		      " 1)   0.911 us    |  f() junk\n"
		      " 1)   0.911 us    |  f\n"
		      " 1)   0.911 us    |\n"
		      " 1) 1.0 ms |  f();\n",
		.want = "LEAF cpu=1 pid=-1 comm=- depth=0 ts=- dur=911 func=f\n",
		.want_unparsed = 4,
	},
};
/* clang-format on */

static void run_case(const struct text_case *tc)
{
	size_t len = tc->in_len ? tc->in_len : strlen(tc->in);
	struct collect c = {.render = true};
	struct pt_input_stats st;
	char err[256] = "";
	int ret;

	ret = pt_text_read_mem(tc->in, len, collect_fn, &c, &st, NULL, err, sizeof(err));
	CHECKF(ret == tc->want_ret, "[%s] ret %d, want %d (%s)", tc->name, ret, tc->want_ret, err);
	CHECKF(strcmp(c.out ? c.out : "", tc->want) == 0, "[%s] events:\n%s--- want:\n%s", tc->name,
	       c.out ? c.out : "", tc->want);
	CHECKF(st.unparsed_lines == tc->want_unparsed, "[%s] unparsed %llu, want %llu", tc->name,
	       (unsigned long long)st.unparsed_lines, (unsigned long long)tc->want_unparsed);
	CHECKF(st.events == c.seen, "[%s] stats.events %llu vs %llu", tc->name,
	       (unsigned long long)st.events, (unsigned long long)c.seen);
	CHECKF(c.bad == 0, "[%s] %d invariant violations", tc->name, c.bad);
	if (tc->want_ret == -EINVAL)
		CHECKF(strstr(err, "not a function_graph trace") && !strchr(err, '\n'),
		       "[%s] message '%s'", tc->name, err);
	collect_reset(&c);
}

/* Ids: same name -> same id and pointer, different names -> different ids. */
static void test_func_ids(void)
{
	static const char in[] = " 0)   1.0 us    |  a();\n 0)   1.0 us    |  b();\n"
				 " 0)   1.0 us    |  a();\n 0)   1.0 us    |  } /* b */\n";
	struct collect c = {0};
	struct pt_input_stats st;
	int ret;

	ret = pt_text_read_mem(in, sizeof(in) - 1, collect_fn, &c, &st, NULL, NULL, 0);
	CHECKF(ret == 0 && c.bad == 0 && c.nnames == 2, "ids: ret %d bad %d names %zu", ret, c.bad,
	       c.nnames);
	collect_reset(&c);
}

static void test_stats(void)
{
	static const char in[] = "cpus=4\n"
				 "  a-1  [000]  3.000000: funcgraph_entry:   1.0 us  |  f();\n"
				 "  a-1  [001]  2.000000: funcgraph_entry:   1.0 us  |  f();\n"
				 "garbage\n"
				 "CPU:1 [LOST 7 EVENTS]\n"
				 "CPU:1 [LOST 5 EVENTS]\n";
	struct collect c = {0};
	struct pt_input_stats st;
	int ret;

	ret = pt_text_read_mem(in, sizeof(in) - 1, collect_fn, &c, &st, NULL, NULL, 0);
	CHECKF(ret == 0, "stats ret %d", ret);
	CHECKF(st.lines == 6 && st.unparsed_lines == 1 && st.events == 4, "lines %llu/%llu/%llu",
	       (unsigned long long)st.lines, (unsigned long long)st.unparsed_lines,
	       (unsigned long long)st.events);
	CHECKF(st.lost_events == 12 && !st.lost_unknown, "lost %llu",
	       (unsigned long long)st.lost_events);
	CHECKF(st.first_ts_ns == 2000000000ull && st.last_ts_ns == 3000000000ull, "ts range");
	CHECKF(st.cpus == 4, "cpus %d", st.cpus);
	collect_reset(&c);
}

static void test_consumer_stop(void)
{
	static const char in[] = " 0)   1.0 us    |  a();\n 0)   1.0 us    |  b();\n"
				 " 0)   1.0 us    |  c();\n";
	struct collect c = {.stop_after = 2};
	struct pt_input_stats st;
	int ret;

	ret = pt_text_read_mem(in, sizeof(in) - 1, collect_fn, &c, &st, NULL, NULL, 0);
	CHECKF(ret == -ECANCELED && c.seen == 2, "stop: ret %d seen %llu", ret,
	       (unsigned long long)c.seen);
	collect_reset(&c);
}

static void test_max_line_mem(void)
{
	static const char in[] = " 0)   1.0 us    |  a();\n"
				 " 0)   1.0 us    |  a_function_with_a_long_name();\n"
				 " 0)   1.0 us    |  b();";
	struct pt_read_opts opts = {.max_line_bytes = 30};
	struct collect c = {0};
	struct pt_input_stats st;
	int ret;

	ret = pt_text_read_mem(in, sizeof(in) - 1, collect_fn, &c, &st, &opts, NULL, 0);
	CHECKF(ret == 0 && st.events == 2 && st.unparsed_lines == 1 && st.lines == 3,
	       "max line: ret %d events %llu unparsed %llu", ret, (unsigned long long)st.events,
	       (unsigned long long)st.unparsed_lines);
	collect_reset(&c);
}

/* Writes @n bytes of @byte then @tail to @fd from a child process. */
static pid_t spawn_writer(int fd, size_t n, char byte, const char *tail)
{
	pid_t pid = fork();

	if (pid == 0) {
		static char block[1 << 16];
		size_t left = n;

		memset(block, byte, sizeof(block));
		while (left) {
			size_t k = left < sizeof(block) ? left : sizeof(block);
			ssize_t w = write(fd, block, k);

			if (w <= 0)
				_exit(1);
			left -= (size_t)w;
		}
		if (write(fd, tail, strlen(tail)) != (ssize_t)strlen(tail))
			_exit(1);
		_exit(0);
	}
	return pid;
}

/* A 100 MB line through a pipe: skipped and counted, memory stays bounded. */
static void test_huge_line_pipe(void)
{
	struct collect c = {0};
	struct pt_input_stats st;
	struct rusage before, after;
	int fds[2], ret, status;
	pid_t pid;

	if (pipe(fds) < 0) {
		CHECKF(0, "pipe: %s", strerror(errno));
		return;
	}
	getrusage(RUSAGE_SELF, &before);
	pid = spawn_writer(fds[1], (size_t)100 << 20, ' ',
			   "x\n 0)   1.0 us    |  after();\n 0)   2.0 us    |  last();");
	close(fds[1]);
	ret = pt_text_read_fd(fds[0], collect_fn, &c, &st, NULL, NULL, 0);
	close(fds[0]);
	waitpid(pid, &status, 0);
	getrusage(RUSAGE_SELF, &after);
	CHECKF(ret == 0 && st.events == 2 && st.unparsed_lines == 1 && st.lines == 3,
	       "huge line: ret %d events %llu unparsed %llu lines %llu", ret,
	       (unsigned long long)st.events, (unsigned long long)st.unparsed_lines,
	       (unsigned long long)st.lines);
	CHECKF(after.ru_maxrss - before.ru_maxrss < 48 * 1024, "max RSS grew by %ld KiB",
	       after.ru_maxrss - before.ru_maxrss);
	collect_reset(&c);
}

static void progress_fn(uint64_t done, uint64_t total, void *ctx)
{
	uint64_t *v = ctx;

	v[0]++;
	v[1] = done;
	v[2] = total;
}

/* Progress from a regular file: every ~16 MiB, total = file size. */
static void test_progress_file(void)
{
	static const char line[] = " 0)   1.0 us    |  a();\n";
	char path[] = "/tmp/pt-text-progressXXXXXX";
	uint64_t prog[3] = {0};
	struct pt_read_opts opts = {.progress = progress_fn, .progress_ctx = prog};
	struct collect c = {0};
	struct pt_input_stats st;
	size_t i, n = ((size_t)40 << 20) / (sizeof(line) - 1);
	char *buf = malloc(n * (sizeof(line) - 1));
	int fd = mkstemp(path), ret;

	CHECKF(fd >= 0 && buf, "mkstemp");
	if (fd < 0 || !buf) {
		free(buf);
		return;
	}
	unlink(path);
	for (i = 0; i < n; i++)
		memcpy(buf + i * (sizeof(line) - 1), line, sizeof(line) - 1);
	CHECKF(write(fd, buf, n * (sizeof(line) - 1)) == (ssize_t)(n * (sizeof(line) - 1)),
	       "write");
	lseek(fd, 0, SEEK_SET);
	ret = pt_text_read_fd(fd, collect_fn, &c, &st, &opts, NULL, 0);
	CHECKF(ret == 0 && st.events == n, "progress read: ret %d events %llu", ret,
	       (unsigned long long)st.events);
	CHECKF(prog[0] == 2 && prog[2] == n * (sizeof(line) - 1), "progress calls %llu total %llu",
	       (unsigned long long)prog[0], (unsigned long long)prog[2]);
	close(fd);
	memset(prog, 0, sizeof(prog));
	collect_reset(&c);
	ret = pt_text_read_mem(buf, n * (sizeof(line) - 1), collect_fn, &c, &st, &opts, NULL, 0);
	CHECKF(ret == 0 && prog[0] == 2, "mem progress calls %llu", (unsigned long long)prog[0]);
	collect_reset(&c);
	free(buf);
}

static void test_bad_fd(void)
{
	struct collect c = {0};
	struct pt_input_stats st;
	char err[128] = "";
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret;

	ret = pt_text_read_fd(fd, collect_fn, &c, &st, NULL, err, sizeof(err));
	CHECKF(ret == -EISDIR && err[0], "dir fd: ret %d err '%s'", ret, err);
	close(fd);
	collect_reset(&c);
}

int main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	test_func_ids();
	test_stats();
	test_consumer_stop();
	test_max_line_mem();
	test_huge_line_pipe();
	test_progress_file();
	test_bad_fd();
	if (test_failures) {
		fprintf(stderr, "%d failure(s)\n", test_failures);
		return 1;
	}
	printf("all %zu cases and 7 checks passed\n", sizeof(cases) / sizeof(cases[0]));
	return 0;
}

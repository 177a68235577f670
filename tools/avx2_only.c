/* Run a program as if this CPU had AVX2 but no AVX-512 or AMX, to measure the speed an AVX2-only
 * machine gets from the kernels onnxruntime, OpenCV, x264 and PyTorch pick for it:
 *
 *     gcc -O2 -shared -fPIC -o /tmp/avx2_only.so tools/avx2_only.c
 *     LD_PRELOAD=/tmp/avx2_only.so rtnst bench --model A --model B --sizes 1280x720 --rounds 3
 *
 * Libraries choose their kernels from what the CPUID instruction reports. Linux can make CPUID
 * trap (CPUID faulting, arch_prctl ARCH_SET_CPUID; the `cpuid_fault` flag in /proc/cpuinfo): every
 * CPUID then raises SIGSEGV, which this library answers with the real values minus AVX-512, AMX and
 * AVX-VNNI. The kernels run on this machine's cores, caches and memory, so compare models side by
 * side in one run; the figures are not those of a particular AVX2 CPU. Check it took effect:
 * `python -c "import torch; print(torch.backends.cpu.get_cpu_capability())"` prints AVX2.
 * Without CPUID faulting it stops the program at once rather than let it run natively unnoticed.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define BIT(n) (1u << (n))

static void set_faulting(int on) { syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

static void answer_cpuid(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *r = uc->uc_mcontext.gregs;
    const uint8_t *ip = (const uint8_t *)r[REG_RIP];
    (void)info;
    if (ip[0] != 0x0f || ip[1] != 0xa2) { /* a real crash: let it happen */
        signal(sig, SIG_DFL);
        return;
    }
    unsigned leaf = (unsigned)r[REG_RAX], sub = (unsigned)r[REG_RCX], a, b, c, d;
    set_faulting(0);
    __cpuid_count(leaf, sub, a, b, c, d);
    set_faulting(1);
    if (leaf == 7 && sub == 0) {
        /* AVX-512 F, DQ, IFMA, PF, ER, CD, BW, VL */
        b &= ~(BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31));
        /* AVX-512 VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ */
        c &= ~(BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14));
        /* AVX-512 4VNNIW, 4FMAPS, VP2INTERSECT, FP16; AMX BF16, TILE, INT8 */
        d &= ~(BIT(2) | BIT(3) | BIT(8) | BIT(22) | BIT(23) | BIT(24) | BIT(25));
    } else if (leaf == 7 && sub == 1) {
        a &= ~(BIT(4) | BIT(5) | BIT(21)); /* AVX-VNNI, AVX-512 BF16, AMX FP16 */
    } else if (leaf == 0xd && sub == 0) {
        a &= ~(BIT(5) | BIT(6) | BIT(7) | BIT(17) | BIT(18)); /* AVX-512 and AMX register state */
    }
    r[REG_RAX] = a;
    r[REG_RBX] = b;
    r[REG_RCX] = c;
    r[REG_RDX] = d;
    r[REG_RIP] += 2;
}

__attribute__((constructor)) static void start(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = answer_cpuid;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        fprintf(stderr, "avx2_only: this CPU or kernel has no CPUID faulting (cpuid_fault in /proc/cpuinfo)\n");
        exit(2);
    }
}

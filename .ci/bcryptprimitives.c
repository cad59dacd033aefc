/* CI-only stand-in for bcryptprimitives.dll under Wine 8 (Debian 12), which lacks it: Rust std
   (>= 1.78) imports ProcessPrng from it, so every Rust .exe would exit at once with code 53.
   Built by tests/windows/service-test.sh into the throwaway Wine prefix; never shipped (real
   Windows 10+ has the DLL). */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buf, ULONG len); /* RtlGenRandom, advapi32 */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

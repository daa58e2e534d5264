/* error.c — version and error texts. */
#include "internal.h"

#include <string.h>

const char *uds_version(void) { return UDSOCK_VERSION; }

/*
 * Library codes get their own text; everything else is a negative errno and
 * goes to strerror(). strerror() may use a static buffer for unknown values,
 * which is acceptable for the "human-readable" contract.
 */
const char *uds_strerror(int err)
{
    switch (err) {
    case 0:
        return "Success";
    case UDS_EFRAME:
        return "Malformed frame header from peer";
    case UDS_ECLOSED:
        return "Connection closed";
    case UDS_ELOCKFILE:
        return "Lock file exists and is not udsock's";
    case UDS_EPATHMOVED:
        return "Path moved while binding";
    case UDS_ESYMLINK:
        return "Path goes through a symlink owned by another user";
    case UDS_EADDR_SYNTAX:
        return "Address not understood";
    case UDS_EADDR_SCHEME:
        return "Unknown address scheme";
    case UDS_EADDR_EMPTY:
        return "Empty name in address";
    case UDS_EADDR_NOPORT:
        return "Missing port";
    case UDS_EADDR_PORT:
        return "Bad port (a number 0-65535 or a service name)";
    case UDS_EADDR_PORTRANGE:
        return "Port out of range (0-65535)";
    case UDS_EADDR_V6BRACKETS:
        return "IPv6 address needs brackets ([ADDR]:PORT)";
    case UDS_EADDR_SERVICE:
        return "Unknown service name";
    case UDS_EADDR_NOHOST:
        return "Name or service not known";
    case UDS_EADDR_RESOLVE:
        return "Name resolution failed (temporary or server failure)";
    default:
        break;
    }
    if (err < 0)
        err = -err;
    return strerror(err);
}

void uds__sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

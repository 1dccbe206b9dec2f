# The Gregorian calendar rule both compiled date checks use (fhirc's R4 dates, zwrc's FileMan dates);
# inline, so each module gets its own copy at compile time and nothing links across modules.

cdef inline int days_in_month(int year, int month) noexcept nogil:
    """Days in ``month`` (1-12) of ``year``."""
    if month == 2:
        return 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    if month == 4 or month == 6 or month == 9 or month == 11:
        return 30
    return 31

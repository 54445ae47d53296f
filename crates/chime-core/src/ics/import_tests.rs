//! Tests of the iCalendar import.

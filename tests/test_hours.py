"""Working time (bot.tickets.hours): opening periods, due times, promises, and the settings that
say so.

Every time is fixed: nothing here depends on the clock of the machine running the tests.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.tickets.hours import (
    ENV_ANSWER_TARGET,
    ENV_BUSINESS_HOURS,
    ENV_CALENDAR,
    ENV_HOLIDAYS,
    ENV_TIMEZONE,
    ENV_WORKDAYS,
    BusinessHours,
    CalendarError,
    Target,
    calendar_from_env,
    calendar_from_yaml,
    load_calendar,
    parse_intervals,
    parse_target,
    parse_week,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)
DEFAULT = BusinessHours()
TWO_DAYS = timedelta(hours=14)  # the default target: 2 working days of 7 h
# China's 2025 National Day and Mid-Autumn: 1-8 October off, Sunday 28 September and Saturday
# 11 October worked instead (调休).
NATIONAL_DAY = calendar_from_env(
    {ENV_HOLIDAYS: "2025-10-01..2025-10-08", ENV_WORKDAYS: "2025-09-28,2025-10-11"}
).hours


def sh(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def be(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def hours(**environ: str) -> BusinessHours:
    names = {"tz": ENV_TIMEZONE, "week": ENV_BUSINESS_HOURS}
    return calendar_from_env({names[key]: value for key, value in environ.items()}).hours


def problems(environ: dict[str, str]) -> tuple[tuple[str, str], ...]:
    with pytest.raises(CalendarError) as caught:
        calendar_from_env(environ)
    return caught.value.problems


# --- defaults ----------------------------------------------------------------------------------


def test_defaults_are_shanghai_weekdays_with_a_lunch_break_and_two_working_days() -> None:
    calendar = calendar_from_env({})
    assert calendar.hours == DEFAULT
    assert calendar.hours.zone == SHANGHAI
    assert calendar.hours.week[0] == ((9 * 60, 12 * 60), (13 * 60 + 30, 17 * 60 + 30))
    assert calendar.hours.week[5:] == ((), ())
    assert calendar.hours.working_day == timedelta(hours=7)
    assert calendar.target == TWO_DAYS


def test_blank_variables_mean_the_defaults() -> None:
    blank = {ENV_TIMEZONE: " ", ENV_BUSINESS_HOURS: "", ENV_ANSWER_TARGET: "", ENV_CALENDAR: ""}
    assert load_calendar(blank) == calendar_from_env({})


# --- within hours, lunch, evening, weekend -----------------------------------------------------


def test_within_hours() -> None:
    wednesday = sh(2026, 11, 25, 10, 0)
    assert DEFAULT.is_open(wednesday)
    assert DEFAULT.next_opening(wednesday) == wednesday
    assert DEFAULT.add_working_time(wednesday, HOUR) == sh(2026, 11, 25, 11, 0)
    assert DEFAULT.add_working_time(wednesday, TWO_DAYS) == sh(2026, 11, 27, 10, 0)


def test_the_lunch_break_is_skipped() -> None:
    assert DEFAULT.is_open(sh(2026, 11, 25, 11, 59, 59))
    assert not DEFAULT.is_open(sh(2026, 11, 25, 12, 0))  # closing time is closed
    assert DEFAULT.is_open(sh(2026, 11, 25, 13, 30))  # opening time is open
    assert DEFAULT.next_opening(sh(2026, 11, 25, 12, 15)) == sh(2026, 11, 25, 13, 30)
    assert DEFAULT.add_working_time(sh(2026, 11, 25, 11, 30), HOUR) == sh(2026, 11, 25, 14, 0)
    between = DEFAULT.working_time_between(sh(2026, 11, 25, 11, 0), sh(2026, 11, 25, 14, 0))
    assert between == timedelta(hours=1, minutes=30)


def test_work_ending_at_closing_time_is_due_at_closing_time() -> None:
    assert DEFAULT.add_working_time(sh(2026, 11, 25, 11, 0), HOUR) == sh(2026, 11, 25, 12, 0)


def test_evening_starts_the_next_morning() -> None:
    evening = sh(2026, 11, 25, 18, 0)
    assert not DEFAULT.is_open(evening)
    assert DEFAULT.next_opening(evening) == sh(2026, 11, 26, 9, 0)
    assert DEFAULT.add_working_time(evening, 2 * HOUR) == sh(2026, 11, 26, 11, 0)
    assert DEFAULT.add_working_time(evening, timedelta(0)) == sh(2026, 11, 26, 9, 0)


def test_friday_evening_goes_to_monday() -> None:
    friday = sh(2026, 11, 27, 18, 0)
    assert DEFAULT.next_opening(friday) == sh(2026, 11, 30, 9, 0)
    assert not DEFAULT.is_open(sh(2026, 11, 28, 10, 0))  # Saturday
    assert DEFAULT.add_working_time(friday, TWO_DAYS) == sh(2026, 12, 1, 17, 30)
    monday = sh(2026, 11, 30, 9, 30)
    assert DEFAULT.working_time_between(sh(2026, 11, 27, 17, 0), monday) == HOUR
    assert DEFAULT.working_time_between(monday, sh(2026, 11, 27, 17, 0)) == -HOUR


def test_results_are_in_the_office_zone_whatever_zone_comes_in() -> None:
    utc_evening = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai
    opening = DEFAULT.next_opening(utc_evening)
    assert opening.tzinfo == SHANGHAI
    assert (opening.hour, opening.minute) == (9, 0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        DEFAULT.is_open(datetime(2026, 11, 25, 10, 0))
    with pytest.raises(ValueError, match="negative"):
        DEFAULT.add_working_time(sh(2026, 11, 25, 10, 0), -HOUR)


# --- holidays and make-up days (调休) ----------------------------------------------------------


def test_national_day_week_with_make_up_days() -> None:
    # Saturday before the holiday is a weekend; the Sunday after it is worked.
    assert NATIONAL_DAY.next_opening(sh(2025, 9, 27, 10, 0)) == sh(2025, 9, 28, 9, 0)
    assert NATIONAL_DAY.is_open(sh(2025, 9, 28, 10, 0))
    assert not NATIONAL_DAY.is_open(sh(2025, 10, 1, 10, 0))  # a Wednesday, but National Day
    assert NATIONAL_DAY.next_opening(sh(2025, 10, 1, 10, 0)) == sh(2025, 10, 9, 9, 0)
    assert NATIONAL_DAY.is_open(sh(2025, 10, 11, 10, 0))  # the make-up Saturday
    assert not NATIONAL_DAY.is_open(sh(2025, 10, 12, 10, 0))  # an ordinary Sunday
    # 1 h on 30 Sep, then 9, 10 Oct (7 h each): the last 6 h are worked on Saturday 11 Oct.
    due = NATIONAL_DAY.add_working_time(sh(2025, 9, 30, 16, 30), timedelta(hours=21))
    assert due == sh(2025, 10, 11, 16, 30)
    whole = NATIONAL_DAY.working_time_between(sh(2025, 9, 30, 9, 0), sh(2025, 10, 13, 0, 0))
    assert whole == timedelta(hours=4 * 7)  # 30 Sep, 9, 10 and 11 Oct


def test_a_make_up_day_can_borrow_a_weekdays_hours() -> None:
    environ = {
        ENV_BUSINESS_HOURS: "mon-thu 09:00-17:00; fri 09:00-12:00",
        ENV_WORKDAYS: "2025-10-11=fri, 2025-09-28",
    }
    short_friday = calendar_from_env(environ).hours
    assert short_friday.hours_on(date(2025, 10, 11)) == ((9 * 60, 12 * 60),)
    assert short_friday.hours_on(date(2025, 9, 28)) == ((9 * 60, 17 * 60),)  # the usual hours
    assert short_friday.working_day == timedelta(hours=8)


def test_the_promise_after_hours_before_a_holiday() -> None:
    evening = sh(2025, 9, 30, 18, 0)
    assert NATIONAL_DAY.answer_promise(evening, TWO_DAYS, "zh") == (
        "我们将于10月9日（周四）09:00开始办理，预计于10月10日（周五）17:30前答复"
    )


# --- DST: arithmetic on real elapsed time, wall times in the office's zone --------------------


def test_dst_free_zone_keeps_its_wall_clock() -> None:
    office = hours(week="mon-fri 09:00-17:00")
    due = office.add_working_time(sh(2026, 3, 27, 16, 30), HOUR)
    assert due == sh(2026, 3, 30, 9, 30)
    assert due.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    ("friday", "monday", "offset_after"),
    [
        (be(2026, 3, 27, 16, 30), be(2026, 3, 30, 9, 30), 2),  # CET → CEST on 29 March
        (be(2026, 10, 23, 16, 30), be(2026, 10, 26, 9, 30), 1),  # CEST → CET on 25 October
    ],
)
def test_a_dst_weekend_keeps_the_opening_time_local(
    friday: datetime, monday: datetime, offset_after: int
) -> None:
    office = hours(tz="Europe/Berlin", week="mon-fri 09:00-17:00")
    due = office.add_working_time(friday, HOUR)
    assert (due.date(), due.hour, due.minute) == (monday.date(), 9, 30)
    assert due.utcoffset() == timedelta(hours=offset_after)
    assert due.astimezone(UTC) == monday.astimezone(UTC)
    # Inputs sharing the zone object must not be subtracted on the wall clock.
    assert office.working_time_between(friday, monday) == HOUR


def test_round_the_clock_counts_the_hour_dst_takes_or_gives() -> None:
    always = hours(tz="Europe/Berlin", week="mon-sun 00:00-24:00")
    assert always.working_time_between(be(2026, 3, 29, 0, 0), be(2026, 3, 30, 0, 0)) == 23 * HOUR
    assert always.working_time_between(be(2026, 10, 25, 0, 0), be(2026, 10, 26, 0, 0)) == 25 * HOUR
    # 01:30 + 1 h: 02:30 does not exist that night, the clock shows 03:30.
    assert always.add_working_time(be(2026, 3, 29, 1, 30), HOUR) == be(2026, 3, 29, 3, 30)


def test_the_repeated_autumn_hour_is_ordered_by_instant_not_wall_clock() -> None:
    always = hours(tz="Europe/Berlin", week="mon-sun 00:00-24:00")
    first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)  # CEST
    second = datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=BERLIN)  # CET, 40 min later
    assert always.working_time_between(first, second) == timedelta(minutes=40)
    assert always.is_overdue(first, second, timedelta(minutes=30))
    due = always.add_working_time(first, timedelta(minutes=40))
    assert (due.hour, due.minute, due.fold) == (2, 10, 1)


def test_periods_around_a_dst_gap_are_not_counted_twice() -> None:
    # 02:30 does not exist on 29 March: read as 03:30, the first period ends after the second
    # starts; the overlap must count once.
    office = hours(tz="Europe/Berlin", week="sun 01:00-02:30,03:00-04:00")
    whole = office.working_time_between(be(2026, 3, 29, 0, 0), be(2026, 3, 30, 0, 0))
    assert whole == 2 * HOUR  # 01:00 to 04:00 on the clock, one hour skipped


# --- overdue -----------------------------------------------------------------------------------


def test_overdue_after_the_promised_time() -> None:
    created = sh(2026, 11, 27, 18, 0)  # Friday evening: due Tuesday 17:30
    assert not DEFAULT.is_overdue(created, sh(2026, 12, 1, 17, 0), TWO_DAYS)
    assert not DEFAULT.is_overdue(created, sh(2026, 12, 1, 17, 30), TWO_DAYS)
    assert DEFAULT.is_overdue(created, sh(2026, 12, 1, 17, 31), TWO_DAYS)
    # Due on a Friday, overdue over the weekend too: that is what the citizen was told.
    assert DEFAULT.is_overdue(sh(2026, 11, 25, 10, 0), sh(2026, 11, 28, 10, 0), TWO_DAYS)
    assert DEFAULT.is_overdue(
        created.astimezone(UTC), datetime(2026, 12, 2, 1, 0, tzinfo=UTC), TWO_DAYS
    )


# --- the promise in the acknowledgement --------------------------------------------------------


def test_promise_within_hours() -> None:
    wednesday = sh(2026, 11, 25, 9, 0)
    three_days = timedelta(hours=21)
    assert (
        DEFAULT.answer_promise(wednesday, three_days, "zh") == "预计于11月27日（周五）17:30前答复"
    )
    assert DEFAULT.answer_promise(wednesday, three_days, "en") == (
        "we expect to answer by Fri 27 Nov, 17:30"
    )


def test_promise_outside_hours_names_the_next_working_period() -> None:
    friday = sh(2026, 11, 27, 18, 0)
    assert DEFAULT.answer_promise(friday, TWO_DAYS, "zh") == (
        "我们将于11月30日（周一）09:00开始办理，预计于12月1日（周二）17:30前答复"
    )
    assert DEFAULT.answer_promise(friday, TWO_DAYS, "en") == (
        "we will start on Mon 30 Nov at 09:00 and expect to answer by Tue 1 Dec, 17:30"
    )
    assert DEFAULT.answer_promise(friday, TWO_DAYS, "fr") == DEFAULT.answer_promise(
        friday, TWO_DAYS, "zh"
    )


def test_promise_on_the_same_day_names_the_date_once() -> None:
    morning = sh(2026, 11, 30, 8, 0)
    assert DEFAULT.answer_promise(morning, 2 * HOUR, "en") == (
        "we will start on Mon 30 Nov at 09:00 and expect to answer by 11:00"
    )
    assert DEFAULT.answer_promise(morning, 2 * HOUR, "zh") == (
        "我们将于11月30日（周一）09:00开始办理，预计于11:00前答复"
    )


def test_promise_rounds_seconds_up_and_says_24_00_for_midnight() -> None:
    assert DEFAULT.answer_promise(sh(2026, 11, 25, 10, 0, 30), HOUR, "en") == (
        "we expect to answer by Wed 25 Nov, 11:01"
    )
    late = hours(week="mon-fri 18:00-24:00")
    assert late.answer_promise(sh(2026, 11, 25, 23, 0), HOUR, "zh") == (
        "预计于11月25日（周三）24:00前答复"
    )


# --- settings in the environment ---------------------------------------------------------------


def test_week_formats() -> None:
    week = parse_week("mon-thu 09:00-12:00,13:30-17:30; fri 9:00-12:00 ; sat,sun 10:00-11:00")
    assert week[3] == ((540, 720), (810, 1050))
    assert week[4] == ((540, 720),)
    assert week[5] == week[6] == ((600, 660),)
    # Full-width punctuation from a Chinese keyboard, periods in any order, touching ones merged.
    assert parse_week("Mon-Fri 13：30－17：30，09:00-12:00") == DEFAULT.week
    assert parse_intervals("12:00-13:00, 09:00-12:00") == ((540, 780),)
    assert parse_intervals("00:00-24:00") == ((0, 1440),)


def test_target_formats() -> None:
    assert parse_target("16h") == Target(16, "h")
    assert parse_target(" 2D ").resolve(timedelta(hours=7)) == TWO_DAYS
    assert parse_target("1.5h").resolve(timedelta(hours=7)) == timedelta(minutes=90)
    assert parse_target("90m").resolve(timedelta(hours=7)) == timedelta(minutes=90)
    assert str(parse_target("2d")) == "2d"
    eight_hour_days = calendar_from_env(
        {ENV_BUSINESS_HOURS: "mon-fri 09:00-17:00", ENV_ANSWER_TARGET: "2d"}
    )
    assert eight_hour_days.target == timedelta(hours=16)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        (ENV_TIMEZONE, "Asia/Beijing", "unknown time zone 'Asia/Beijing': write an IANA name"),
        (ENV_TIMEZONE, "/etc/localtime", "unknown time zone"),
        (ENV_TIMEZONE, "Asia", "unknown time zone"),
        (ENV_BUSINESS_HOURS, "mon-fri 9-12", "'9' is not a time of day: write HH:MM"),
        (ENV_BUSINESS_HOURS, "mon-fri 09:00-25:00", "'25:00' is not a time of day"),
        (ENV_BUSINESS_HOURS, "mon-fri", "needs days then opening periods"),
        (ENV_BUSINESS_HOURS, "fri-mon 09:00-17:00", "runs backwards: write days in week order"),
        (ENV_BUSINESS_HOURS, "mo-fr 09:00-17:00", "unknown day 'mo': write mon, tue"),
        (ENV_BUSINESS_HOURS, "mon-fri 17:00-09:00", "ends before it starts"),
        (ENV_BUSINESS_HOURS, "mon-fri 09:00", "is not an opening period: write start-end"),
        (ENV_BUSINESS_HOURS, "mon-fri 09:00-12:00,11:00-13:00", "09:00-12:00 and 11:00-13:00"),
        (ENV_BUSINESS_HOURS, "mon-fri 09:00-12:00; fri 14:00-16:00", "fri is given twice"),
        (ENV_HOLIDAYS, "2026-10-1", "'2026-10-1' is not a date: write YYYY-MM-DD"),
        (ENV_HOLIDAYS, "2026-02-30", "'2026-02-30' is not a date"),
        (ENV_HOLIDAYS, "2026-10-08..2026-10-01", "ends before it starts"),
        (ENV_HOLIDAYS, "2026-10-01..2062-10-08", "days long: check the years"),
        (ENV_WORKDAYS, "2026-10-10=saturday2", "unknown day 'saturday2'"),
        (ENV_WORKDAYS, "2026-10-10=sat", "sat has no opening hours"),
        (ENV_ANSWER_TARGET, "16", "'16' is not an answer target: write a number"),
        (ENV_ANSWER_TARGET, "0h", "above 0"),
        (ENV_ANSWER_TARGET, "2 days", "e.g. 16h or 2d"),
    ],
)
def test_malformed_variables_name_the_variable_and_what_to_write(
    variable: str, value: str, says: str
) -> None:
    found = problems({variable: value})
    assert [where for where, _ in found] == [variable], found
    assert says in found[0][1]


def test_every_malformed_variable_is_reported_at_once() -> None:
    found = problems({ENV_TIMEZONE: "Mars/Olympus", ENV_HOLIDAYS: "x, 2026-10-01, y"})
    assert [where for where, _ in found] == [ENV_TIMEZONE, ENV_HOLIDAYS, ENV_HOLIDAYS]
    assert "CIVICDESK_HOLIDAYS: 'x' is not a date" in str(CalendarError(found))


def test_a_date_both_holiday_and_make_up_day_is_an_error() -> None:
    found = problems({ENV_HOLIDAYS: "2025-10-01..2025-10-08", ENV_WORKDAYS: "2025-10-08"})
    assert found == (
        (
            ENV_WORKDAYS,
            "2025-10-08 is both a holiday and a make-up working day: remove it from one list",
        ),
    )


# --- the YAML file ---------------------------------------------------------------------------

FULL_FILE = """\
timezone: Asia/Shanghai
hours:
  mon-fri: 09:00-12:00, 13:30-17:30
  sat: [09:00-11:30]
holidays:
  - 2025-10-01..2025-10-08   # National Day and Mid-Autumn
  - 2026-01-01
workdays:
  - 2025-09-28
  - 2025-10-11
answer_target: 16h
"""


def write(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "calendar.yaml"
    path.write_text(text, encoding="utf-8")
    return {ENV_CALENDAR: str(path)}


def yaml_problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(CalendarError) as caught:
        calendar_from_yaml(text, "calendar.yaml", environ)
    return [f"{where}: {message}" for where, message in caught.value.problems]


def test_yaml_file_loads(tmp_path: Path) -> None:
    calendar = load_calendar(write(tmp_path, FULL_FILE))
    office = calendar.hours
    assert calendar.target == timedelta(hours=16)
    assert office.week[5] == ((540, 690),)
    assert date(2025, 10, 3) in office.holidays
    assert date(2026, 1, 1) in office.holidays
    assert office.is_open(sh(2025, 9, 28, 10, 0))
    assert office.hours_on(date(2025, 10, 11)) == office.usual_hours


def test_yaml_one_line_values_and_the_environment_for_the_rest() -> None:
    text = "hours: mon-fri 08:00-16:00\nholidays: 2025-10-01..2025-10-08, 2026-01-01\n"
    calendar = calendar_from_yaml(text, "calendar.yaml", {ENV_TIMEZONE: "Europe/Berlin"})
    assert calendar.hours.zone == BERLIN
    assert calendar.hours.week[0] == ((480, 960),)
    assert len(calendar.hours.holidays) == 9
    assert calendar.target == timedelta(hours=16)  # 2d of 8 h


def test_yaml_errors_name_file_and_line() -> None:
    text = FULL_FILE.replace("2026-01-01", "2026-13-01").replace("16h", "16") + "tymezone: UTC\n"
    assert yaml_problems(text) == [
        "calendar.yaml:7: holidays: '2026-13-01' is not a date: write YYYY-MM-DD, e.g. 2025-10-01",
        "calendar.yaml:11: answer_target: '16' is not an answer target: write a number of "
        "working hours or working days above 0, e.g. 16h or 2d",
        "calendar.yaml:12: unknown key 'tymezone': did you mean 'timezone'?",
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("hours:\n  mon-fri: 09:00-17:00\n  fri: 09:00-12:00\n", "calendar.yaml:3: hours: fri is"),
        ("hours:\n  mon-fri: 09:00-12:00, 1:30pm\n", "calendar.yaml:2: hours: '1:30pm'"),
        ("hours: [09:00-17:00]\n", "calendar.yaml:1: hours is a list: write 'hours: mon-fri"),
        ("holidays:\n  - 2025-10-01: National Day\n", "calendar.yaml:2: holidays: write one date"),
        ("holidays: {a: b}\n", "calendar.yaml:1: holidays must be a list of dates"),
        ("workdays:\n  - 2025-10-11=sun\n", "calendar.yaml:2: 2025-10-11=sun: sun has no"),
        ("timezone:\n", "calendar.yaml:1: timezone must be one text, but it is nothing"),
        ("timezone: UTC\ntimezone: UTC\n", "calendar.yaml:2: 'timezone' appears twice"),
        ("hours: [\n", "calendar.yaml:2: this is not valid YAML: a list in [ ] or { } is broken"),
        ("- 2025-10-01\n", "calendar.yaml:1: the calendar is a list: write 'key: value' lines"),
        ("", "calendar.yaml: the file is empty"),
    ],
)
def test_yaml_mistakes(text: str, says: str) -> None:
    found = yaml_problems(text)
    assert any(problem.startswith(says) for problem in found), found


def test_yaml_and_environment_must_not_both_set_a_value(tmp_path: Path) -> None:
    environ = write(tmp_path, FULL_FILE) | {ENV_HOLIDAYS: "2027-01-01"}
    with pytest.raises(CalendarError) as caught:
        load_calendar(environ)
    (where, message), *_ = caught.value.problems
    assert where == ENV_HOLIDAYS
    assert message.endswith("calendar.yaml:5: keep one of the two")


def test_yaml_file_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match=r"CIVICDESK_CALENDAR: cannot read .*nope\.yaml"):
        load_calendar({ENV_CALENDAR: str(tmp_path / "nope.yaml")})
    path = tmp_path / "latin1.yaml"
    path.write_bytes("timezone: UTC\n# Büro\n".encode("latin-1"))
    with pytest.raises(CalendarError, match=r"latin1\.yaml:2: this file is not saved as UTF-8"):
        load_calendar({ENV_CALENDAR: str(path)})


# --- properties --------------------------------------------------------------------------------

OFFICES = [
    DEFAULT,
    NATIONAL_DAY,
    hours(tz="Europe/Berlin", week="mon-fri 08:00-12:00,13:00-16:30; sat 09:00-12:00"),
    hours(tz="Europe/Berlin", week="mon-sun 00:00-24:00"),
    hours(tz="Europe/Berlin", week="sun 01:00-02:30,03:00-04:00; wed 23:00-24:00"),
]

offices = st.sampled_from(OFFICES)
moments = st.datetimes(
    # Hypothesis takes naive bounds and attaches the zones itself.
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2027, 12, 31),
    timezones=st.sampled_from([UTC, SHANGHAI, BERLIN]),
    allow_imaginary=False,
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=15))
TICK = timedelta(microseconds=1)


@settings(max_examples=300, deadline=None)
@given(offices, moments, durations)
def test_adding_working_time_lands_in_or_at_the_end_of_an_opening(
    office: BusinessHours, start: datetime, duration: timedelta
) -> None:
    # Instants are compared and shifted in UTC: on the wall clock, an autumn night's repeated
    # hour would compare equal and `+ TICK` would drop the fold.
    due = office.add_working_time(start, duration).astimezone(UTC)
    assert due >= start.astimezone(UTC)
    assert office.is_open(due) or office.is_open(due - TICK)
    assert office.working_time_between(start, due) == duration


@settings(max_examples=200, deadline=None)
@given(offices, moments, durations, durations.filter(lambda d: d > timedelta(0)))
def test_adding_twice_is_adding_the_sum(
    office: BusinessHours, start: datetime, first: timedelta, second: timedelta
) -> None:
    halfway = office.add_working_time(start, first)
    assert office.add_working_time(halfway, second) == office.add_working_time(
        start, first + second
    )


@settings(max_examples=200, deadline=None)
@given(offices, moments, moments, moments)
def test_working_time_between_adds_up(
    office: BusinessHours, a: datetime, b: datetime, c: datetime
) -> None:
    ab, bc = office.working_time_between(a, b), office.working_time_between(b, c)
    assert ab + bc == office.working_time_between(a, c)
    assert office.working_time_between(b, a) == -ab
    assert abs(ab) <= abs(b.astimezone(UTC) - a.astimezone(UTC))


@settings(max_examples=200, deadline=None)
@given(offices, moments)
def test_open_means_working_time_passes(office: BusinessHours, at: datetime) -> None:
    instant = at.astimezone(UTC)
    assert office.is_open(at) == (office.working_time_between(at, instant + TICK) == TICK)
    opening = office.next_opening(at)
    assert opening.astimezone(UTC) >= instant
    assert office.is_open(opening)
    assert office.working_time_between(at, opening) == timedelta(0)


@settings(max_examples=300, deadline=None)
@given(moments, st.integers(min_value=1, max_value=30 * 8 * 60))
def test_promises_fit_a_weibo_post(created: datetime, minutes: int) -> None:
    target = timedelta(minutes=minutes)
    zh = DEFAULT.answer_promise(created, target, "zh")
    en = DEFAULT.answer_promise(created, target, "en")
    assert len(zh) <= 45, zh
    assert len(en) <= 100, en

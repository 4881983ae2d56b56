import { crashSuite } from "./crash.js"

crashSuite("2 of 2", 100, 2)
